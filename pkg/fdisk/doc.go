// Package fdisk is /etc/beowulf/fdisk, the partition tables beofdisk
// writes to the compute nodes' local disks, and the code that writes one
// table to one disk (on the node; the GPT itself encoded and decoded by
// go-diskfs's partition/gpt package, the disk handled in disk.go).
//
// Scyld's beofdisk kept one partition description per disk geometry the
// nodes reported; `beofdisk -d` wrote the default ones and `beofdisk -w`
// wrote them to every node's disks. beo keeps the same two steps with one
// text file, one section per kind of disk.
//
// # Format
//
// UTF-8 text, one directive a line; '#' starts a comment running to the
// end of the line; tokens are separated by spaces or tabs.
//
//	disk NAME [SIZE]      starts a section: the disks it applies to
//	part TYPE SIZE        the section's next partition
//
// NAME is the kernel's name for the disk (vda, sda, nvme0n1) or * for any
// disk. SIZE on a disk line restricts the section to disks of exactly
// that size; without it any size matches. A disk takes the first section
// (in file order) that matches its name and size, so put sized and named
// sections before general ones.
//
// TYPE is linux (a filesystem: GPT type Linux filesystem) or swap (Linux
// swap). A part SIZE is a number of bytes with an optional binary suffix K,
// M, G or T (512M, 2G), a percentage of the disk (25%), or rest: what is
// left, only for the section's last partition. Partitions are numbered
// from 1 in order (vda1, vda2; nvme0n1p1) and that number is what
// /etc/beowulf/fstab names.
//
//	# 8 GiB virtio disks: 1 GiB of swap, the rest for /scratch.
//	disk vda 8G
//	part swap 1G
//	part linux rest
//
// # Layout on the disk
//
// A GPT with a protective MBR (as go-diskfs's gpt package writes it). Each
// partition starts on a 1 MiB boundary, the first at 1 MiB; sizes are
// rounded up to whole sectors; the last 33 sectors hold the backup GPT.
// Plan computes that layout for a disk size and refuses one that does not
// fit — a partition passing the end, a rest of less than 1 MiB, more than
// 128 partitions — before anything is written: beofdisk -w plans every
// disk of every node first, and the node plans again against the size its
// kernel reports, so a refused layout leaves every disk as it was.
// Apply then writes the table and has the kernel re-read it (BLKRRPART,
// or BLKPG for each changed partition when the disk is busy: disk.go),
// so the partitions' device nodes appear without a reboot.
//
// # Diagnostics
//
// Parse reports every problem as "file:line: message" (a *ParseError
// holding each one); nothing of a file with an error is used. Errors:
// unknown directives, a part before any disk line, a bad TYPE or SIZE, a
// rest that is not the last partition, percentages over 100%, a section
// without partitions, a section that can never match (the same NAME and
// SIZE as an earlier one).
//
// # Defaults
//
// Default writes, for each distinct disk (name and size) the nodes report,
// a section for exactly that disk: swap of an eighth of the disk (between
// 16 MiB and 2 GiB; none on a disk under 256 MiB), then a linux partition
// with the rest. Disks under 4 MiB are left out.
package fdisk
