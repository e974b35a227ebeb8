package initramfs

// DefaultModules are the kernel modules every boot image carries, with
// their dependencies: the NICs of QEMU and common cluster hardware, and the
// disk controllers a node's local storage uses. Names may use - or _.
// Modules the kernel has built in (modules.builtin) are skipped.
func DefaultModules() []string {
	return []string{
		"virtio_pci", "virtio_net", "e1000", "e1000e", "igb",
		"virtio_blk", "ahci", "sd_mod", "nvme",
	}
}
