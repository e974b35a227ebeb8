package initramfs

// DefaultModules are the kernel modules every boot image carries, with
// their dependencies: the NICs of QEMU and common cluster hardware, the
// disk controllers a node's local storage uses, what beofdisk's local
// filesystems need (ext4, and crc32c, which ext4's metadata checksums ask
// the crypto API for: with no modprobe on the node the kernel cannot load
// it on demand), and the NFS client (NFSModules). Names may use - or _.
// Modules the kernel has built in (modules.builtin) are skipped.
func DefaultModules() []string {
	return append([]string{
		"virtio_pci", "virtio_net", "e1000", "e1000e", "igb",
		"virtio_blk", "ahci", "sd_mod", "nvme",
		"crc32c_generic", "ext4",
	}, NFSModules()...)
}

// NFSModules are the NFS client, for the fstab's nfs and nfs4 lines:
// nfsv4 and nfsv3 bring sunrpc, grace, lockd, netfs, fscache, nfs,
// nfs_acl and dns_resolver. A node loads them only when its fstab asks
// (pid1.LoadModules: a mount, or init's preload of beo.modules=): an
// NFSv4 mount needs 8 of them, 5.3 MB. Debian 6.1's are 10 files,
// 5.6 MB: the lz4 initrd grows from 7.7 to 9.4 MB. The builder prepares
// them, and ext4's, for a fast load (modprep.go).
func NFSModules() []string { return []string{"nfsv4", "nfsv3"} }
