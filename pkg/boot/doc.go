// Package boot is beoserv, the master's boot server: DHCP (PXE and iPXE
// aware), TFTP, HTTP and a minimal IPv6 router advertiser, all on the
// cluster interface. It hands every compute node its address, the iPXE
// binary, then a script naming its kernel, initrd and command line, and
// serves those files and the node's RAM root (rootfs.cpio).
//
// # Who gets what
//
// The config file (pkg/config) decides, by client MAC (chaddr):
//
//   - a node line: the node's address (iprange start + N);
//   - a host line: its address (given, or from a hostrange);
//   - an ignore line: nothing, ever;
//   - no line: under `nodeassign append|insert` the MAC becomes a new node
//     line (config.File.AppendNode, saved atomically) while a number below
//     NodeCount is free; once the cluster is full it gets an `ignore MAC`
//     line instead (config.File.AppendIgnore, saved the same way), as
//     Scyld's beoserv classified new nodes past the node count "ignored";
//     under `nodeassign off` the MAC is recorded once in the
//     unknown-addresses file (/var/beowulf/unknown_addresses, one MAC per
//     line, rewritten atomically). Either way it gets no answer. Each of
//     the two lists takes at most 1024 MACs this way (maxRecorded): past
//     that a new MAC is only logged, so a flood of made-up MACs cannot
//     grow the config or keep rewriting it.
//
// Addresses are a pure function of the config, so there is no lease
// database: firmware PXE, iPXE and the node's own init all get the same
// address for a MAC, and a restarted server gives the same answers. Leases
// are long (LeaseTime, default 7 days). The server never pings an address
// before offering it.
//
// # DHCP message flow
//
//	DISCOVER → OFFER     address, mask, server id, lease, boot file (below)
//	REQUEST  → ACK       when the requested address (option 50, or ciaddr
//	                     when renewing) is the MAC's address and the server
//	                     id (option 54), if any, is ours
//	         → NAK       when it names another address;
//	                     silence when it selects another server
//	INFORM   → ACK       options only, no lease
//	DECLINE, RELEASE     logged, no answer
//
// Replies go where RFC 2131 §4.1 says: to the relay (giaddr:67) when
// relayed, to ciaddr:68 when the client has an address, else broadcast
// on the cluster interface (255.255.255.255:68; the unicast-to-chaddr case
// is answered by broadcast, which every PXE ROM, iPXE and busybox udhcpc
// accepts, and which needs no ARP injection).
//
// The boot file depends on who asks:
//
//   - firmware PXE (option 60 starts with "PXEClient", no option 77
//     "iPXE"): siaddr = this server, file = the iPXE binary for option 93's
//     architecture, fetched over TFTP: undionly.kpxe for BIOS (arch 0),
//     snponly.efi for x86 UEFI (arch 6, 7, 9; Debian's ipxe.efi is a symlink
//     out of /usr/lib/ipxe, which the TFTP root refuses to follow). The
//     offer echoes option 60 "PXEClient" and option 43 sub-option 6 = 8
//     (PXE discovery control: boot the file named, no boot-server discovery).
//   - iPXE (option 77 = "iPXE", raw or RFC 3004, or option 175 present):
//     file = http://SERVER:HTTP/ipxe/MAC, the node's script (below).
//   - anything else (the node's init, a switch): the address only.
//
// Every offer and ack carries option 175 (iPXE encapsulated) with
// sub-option 176 no-pxedhcp = 1, so iPXE does not wait 3 s for a ProxyDHCP
// offer; and the router-advertisement responder answers IPv6 router
// solicitations on the interface (lifetime 0, no prefix, to ff02::1), so
// iPXE does not wait 16 s for IPv6 autoconfiguration.
//
// Under the config's `ipforward` (the master forwards and masquerades the
// cluster network, pkg/nat) every offer and ack also carries option 3,
// router = this server, and option 6, the master's DNS servers: the IPv4
// nameservers of Options.ResolvConf (default /etc/resolv.conf, or
// systemd-resolved's upstream list when that names only its local stub),
// leaving out loopback ones, which would not answer a node; when none is
// left the log says so and option 6 is left out. The list is read at
// start and at each reload; ipforward itself is read at start (a reload
// that changes it is logged: the forwarding is set up once). Without
// ipforward answers name no router. `beoserv` alone hands the same
// options but forwards nothing: forwarding is `beo master`'s.
//
// # iPXE script
//
// GET /ipxe/MAC (MAC as 52-54-00-00-00-01 or with colons) returns, for a
// node at boot-stage pxe:
//
//	#!ipxe
//	kernel http://SERVER:HTTP/boot/kernel CMDLINE
//	initrd http://SERVER:HTTP/boot/initrd
//	boot
//
// CMDLINE is the node's effective kernelcommandline (config precedence:
// default, class, node lines), DefaultCmdline when unset, followed by the
// pkg/bootparam options (beo.master = this server, ports from the config,
// beo.rootfs=/boot/rootfs.cpio). `kernelcommandline none` means exactly
// nothing: no admin words and no beo.* options (the line is `kernel URL`),
// for the kernels that are not beo nodes — a memory test, an installer —
// and take no arguments, or arguments of their own. A beo node needs the
// beo.* options: without them its init falls back to the DHCP server as
// the master and every port at its default, so give a beo node a command
// line (or none at all: unset) rather than `none`. An unset
// kernelimage / initrdimage means the boot directory's kernel / initrd
// (beoboot's output); a configured path is served at /image/PATH (only
// paths the config names for some node; a relative path is taken inside
// the boot directory); `none` leaves the line out (no kernel at all means
// there is nothing to boot: the script exits). At boot-stage local the
// script is `exit`: iPXE returns to the firmware, which boots the next
// device (the local disk). Serving the pxe script to a pxe+local node
// rewrites its line to stage local (config.File.SetBootStage + Save), so
// its next boot is local; an admin sets it back to pxe to reprovision.
//
// # Files
//
// HTTP serves GET/HEAD /boot/NAME from the boot directory (kernel, initrd,
// rootfs.cpio — written by beoboot), /image/PATH (config-named images) and
// /ipxe/MAC. TFTP (pin/tftp, read-only, blksize and tsize negotiated)
// serves the TFTP root, by default /usr/lib/ipxe. Both open files through
// os.Root: a name with a ".." element, a leading '/', a backslash or a NUL,
// or one reaching a symlink that leaves the root, is refused.
//
// # Logs, reloads, one server per interface
//
// Each node's dialog — MAC, what it asked, what it got — is appended to
// LogDir/node.N as "beoserv" lines (pkg/nodelog, the format bpmaster
// writes too); other MACs go to the daemon log. Reload
// (SIGHUP, wired by the applet) re-reads the config file; a file with
// errors is refused, each error logged as file:line, and the running
// config stays. The DHCP socket is bound to the interface without
// SO_REUSEADDR/SO_REUSEPORT, so a second DHCP server on the same interface
// (another beoserv, dnsmasq, Kea) makes the later one fail to start instead
// of splitting the clients between them.
//
// # Libraries and why
//
// DHCP packets are parsed and built by insomniacslk/dhcp (dhcpv4), served
// by its server4.Server over a socket this package opens (server4's own
// sets SO_REUSEPORT, which would let two servers share an interface);
// TFTP is pin/tftp/v3; router advertisements use golang.org/x/net/icmp
// and ipv6 (the 12-byte RA header and the source link-layer option are
// written here, the checksum is the kernel's).
package boot
