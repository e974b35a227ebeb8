package fstab

// ExampleText is the commented default /etc/beowulf/fstab, what `beo
// config fstab-example` prints: the kernel's file systems every node
// has, /home read-write and the directories holding common commands
// (/usr, /opt) read-only from the master, all three nonfatal so that a
// master without an NFS server still brings its nodes up (node.N then
// says why each mount failed). It parses with no diagnostics.
const ExampleText = `# /etc/beowulf/fstab: what every compute node mounts as it comes up.
#
# Node N reads /etc/beowulf/fstab.N instead when that file exists (the
# whole file: nothing is merged). The master sends each node its lines
# after it connects and before node_up; a failed mount makes the node
# "error", unless the line says nonfatal: then node.N logs the failure
# and the node comes up. Check an edited file with "beo config check".
#
# SOURCE          TARGET    TYPE    OPTIONS                     DUMP PASS
#
# $MASTER is the master's cluster address. Nodes mount before any name
# resolves: NFS sources are $MASTER:/PATH or ADDRESS:/PATH, never a name.
# $RAMDISK is a RAM file system; a node's root always is one in beo.

# The kernel's own file systems. A node has them mounted already; these
# lines document them and do nothing.
$RAMDISK          /         tmpfs   defaults                    0 0
none              /proc     proc    defaults                    0 0
none              /sys      sysfs   defaults                    0 0
none              /dev/pts  devpts  gid=5,mode=620              0 0
none              /dev/shm  tmpfs   defaults                    0 0

# The users' homes, read-write: a job's files land on the master with
# the job's uid (NFS AUTH_SYS; root on a node is squashed to nobody).
$MASTER:/home     /home     nfs     rw,nonfatal                 0 0

# The master's commands and libraries, read-only: a node runs the
# master's programs and shell scripts from here (bpsh sends nothing that
# lies under /usr); everything else is still sent and cached by content.
$MASTER:/usr      /usr      nfs     ro,nonfatal                 0 0
$MASTER:/opt      /opt      nfs     ro,nonfatal                 0 0

# More examples:
#   scratch space in RAM, half the node's memory at most:
#     $RAMDISK      /scratch  tmpfs   size=50%,mode=1777          0 0
#   a file server on the cluster network (by address):
#     10.54.0.2:/data /data   nfs     rw,hard                     0 0
#   a local disk (partitioned by beofdisk -w): as the node boots, each
#   partition is made or checked as the config's mkfs and fsck say, then
#   mounted or swapped on (beofdisk -s does the same once it is up):
#     /dev/sda2     none      swap    defaults                    0 0
#     /dev/sda3     /scratch  ext4    defaults                    0 0
`
