package config

// DefaultText is the config used when /etc/beowulf/config does not exist:
// a dedicated cluster interface beo0 on 10.99.0.0/24 (the master is
// expected at 10.99.0.1), 64 nodes at .100–.163, host devices at
// .200–.249. It names no boot files: unset kernel, initrd and command line
// mean the boot server's own (beoboot's output).
const DefaultText = `# Built-in default beo config, used when /etc/beowulf/config does not exist.
interface beo0
nodes 64
iprange 10.99.0.100 10.99.0.163
hostrange 10.99.0.200 10.99.0.249
nodename n%N
nodeassign append
pingtimeout 60
`

// DefaultFile is the file name diagnostics give the built-in default.
const DefaultFile = "(built-in default)"

// Default returns DefaultText parsed. It has no diagnostics; master
// addresses are not checked (Parse DefaultText with Options for that).
func Default() *Config {
	c, _ := Parse(DefaultFile, []byte(DefaultText), Options{})
	return c
}
