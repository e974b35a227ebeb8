package initramfs

// fakeDep is the virtio_net part of Debian 12's modules.dep, plus e1000,
// a module using '-' in its file name, and a built-in.
const fakeDep = `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
kernel/drivers/cpufreq/acpi-cpufreq.ko.xz:
`

// fakeAlias is a modules.alias for fakeDep's tree (depmod spells module
// names with '_'), with lines the builder drops: a module not carried
// (igb), a comment, a pattern the node could not match, a short line.
const fakeAlias = `# Aliases extracted from modules themselves.
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000001v* virtio_net
alias pci:v00008086d000010C9sv*sd*bc*sc*i* igb
alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
alias pci:[v00008086 e1000
alias cpu:type:x86,ven*fam*mod*:feature:*0016* acpi_cpufreq
alias e1000
`
