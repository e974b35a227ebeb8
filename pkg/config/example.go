package config

// ExampleText is a commented /etc/beowulf/config, what `beo config example`
// prints: the built-in defaults (DefaultText, DefaultPorts,
// DefaultPingTimeout, DefaultNodeAssign) written out, each directive with
// a comment, and the optional directives commented out, the way Scyld
// shipped its config file. It parses with no diagnostics (the master at
// 10.99.0.1) to the same settings as Default.
const ExampleText = `# /etc/beowulf/config: the beo cluster configuration.
#
# These are beo's built-in defaults, each directive with a comment, as
# "beo config example" writes them. Check an edited file with "beo config
# check FILE". A running master re-reads this file on SIGHUP and keeps the
# config it runs when the new one has errors.
#
# One directive a line; '#' starts a comment. The lines that start with
# "#   " below show optional directives: remove the "#" to use one.

# --- The cluster network ---------------------------------------------------

# The head node's interface on the private cluster network (repeatable).
# The boot server answers DHCP, TFTP and HTTP on it. The master's address
# there (10.99.0.1 here) must lie outside the iprange and every hostrange.
interface beo0

# The number of compute nodes: they are numbered 0 to nodes-1.
nodes 64

# Node N's address is the first address plus N: node 0 is 10.99.0.100.
# A cluster needs one; it should hold as many addresses as there are nodes.
iprange 10.99.0.100 10.99.0.163

# Addresses for the devices that are not nodes (host lines). Repeatable;
# no two ranges may overlap.
hostrange 10.99.0.200 10.99.0.249

# Node N is also called nN (%N is the node number). An OFFSET added to the
# node's address and a netgroup give more names, say for IPMI:
#   nodename n%N-ipmi 0.0.1.0 ipmi
nodename n%N

# --- Nodes -----------------------------------------------------------------

# What the boot server does with a MAC that no line lists: append (a new
# node numbered one above the highest configured), insert (the lowest free
# number) or off (the MAC stays unknown; locked means off too).
nodeassign append

# One line per node: node [N] [CLASS] [SEQUENCE STAGE] MAC...
# The boot server appends one for each new MAC (see nodeassign). SEQUENCE
# STAGE is pxe pxe (the default: always boot over the network), local local
# (always the local disk) or pxe+local pxe (install once over the network,
# then boot the local disk: the boot server sets the stage to local).
#   node 0 52:54:00:00:00:00
#   node 1 pxe+local pxe 52:54:00:00:00:01 52:54:00:00:01:01
# MACs the boot server never answers:
#   ignore 52:54:00:aa:bb:cc
# A device that is not a node (a switch, a PDU) and its address in a
# hostrange; without one it gets the lowest free address of the hostranges:
#   host 00:a0:d1:e9:87:ca 10.99.0.200 switch0

# --- Booting ---------------------------------------------------------------

# Left unset, nodes boot the boot server's own kernel, initrd and command
# line (beoboot's). Set them for every node, for some NODES (15, 10-20 or
# 1,3,10-20), or for a class that node lines name; "none" provides none.
#   kernelimage /boot/vmlinuz
#   initrdimage 10-20 /var/beowulf/boot/computenode.initrd
#   kernelcommandline rw console=ttyS0
#   class memtest kernelimage /var/beowulf/boot/memtest86+.bin
#   class memtest initrdimage none
#   class memtest kernelcommandline none
# Kernel modules to put in the nodes' initrd:
#   bootmodule e1000 virtio_net
# Libraries assumed cached on the nodes:
#   libraries /lib64 /usr/lib64

# --- Beyond the cluster network --------------------------------------------

# Let the nodes reach the networks beyond the master: it forwards and
# masquerades their traffic out of its other interfaces (outbound only:
# nothing outside can reach a node), and DHCP gives the nodes the master as
# router and the master's DNS servers. Read when beo master starts.
#   ipforward

# --- Several masters -------------------------------------------------------

# The masters of one cluster share this file and /etc/beowulf/keys. Each
# line gives nodes (or - for all) their masters, primary first: a node is
# up on its primary and [up] on the others, and reboots into the next one
# up when its primary is gone for pingtimeout.
#   masterorder 0-31 10.99.0.1 10.99.0.2
#   masterorder 32-63 10.99.0.2 10.99.0.1

# --- Local disks -----------------------------------------------------------

# What a node does to a local partition that /etc/beowulf/fstab mounts (or
# swaps on), partitioned by "beofdisk -w" from /etc/beowulf/fdisk. mkfs:
# never (the default: a partition without a filesystem is an error),
# if_error (make one when there is none or fsck cannot repair it) or always
# (remake it at every boot: scratch data only). fsck: never, safe (the
# default: e2fsck -p) or full (e2fsck -f -y).
#   mkfs if_error
#   fsck safe

# --- Daemons ---------------------------------------------------------------

# Seconds a node may stay silent before it is marked down; the master pings
# each node every pingtimeout/2 seconds.
pingtimeout 60

# The daemons' ports.
server bproc 933      # bpmaster, TCP: the nodes' bpslave connections
server beostats 5545  # recvstats, UDP: the nodes' sendstats reports
server kickback 3045  # the kickback daemon: name service for the nodes
server syslog 514     # the log receiver, UDP: the nodes' beoklogd messages
server beofs2 932     # accepted for Scyld configs; beo runs no beofs2 (boot files go over http)
server http 80        # the boot server's HTTP: kernel, initrd, rootfs for iPXE
`
