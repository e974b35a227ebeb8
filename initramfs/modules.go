package initramfs

// DefaultModules are the kernel modules every boot image carries, with
// their dependencies: the NICs of QEMU and common cluster hardware, the
// disk controllers a node's local storage uses, and what beofdisk's
// local filesystems need (ext4, and crc32c, which ext4's metadata
// checksums ask the crypto API for: with no modprobe on the node the
// kernel cannot load it on demand). Names may use - or _.
// Modules the kernel has built in (modules.builtin) are skipped.
func DefaultModules() []string {
	return []string{
		"virtio_pci", "virtio_net", "e1000", "e1000e", "igb",
		"virtio_blk", "ahci", "sd_mod", "nvme",
		"crc32c_generic", "ext4",
	}
}
