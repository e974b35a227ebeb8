package lab

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beo-cluster/beo/pkg/bootparam"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/beo-cluster/beo/pkg/nodelog"
)

// Moment is one moment of a machine's first boot. Source says where it was
// read, and so its resolution: the lab's clock (qemu start), the serial
// port as the lab received it, the master's node log (node.N, read with
// pkg/nodelog: milliseconds), or the node-state watcher.
type Moment struct {
	Name   string
	T      time.Time // zero when not seen
	Source string
}

// The moments of a first boot, in boot order.
const (
	MomentQEMU        = "qemu started"
	MomentDHCP        = "DHCP ack (iPXE)"
	MomentScript      = "iPXE script fetched"
	MomentKernelFetch = "kernel fetch"
	MomentInitrdFetch = "initrd fetch"
	MomentFetched     = "initrd fetched"
	MomentKernel      = "kernel started"
	MomentInit        = "/init started"
	MomentNodeDHCP    = "DHCP ack (init)"
	MomentRootfs      = "rootfs fetch"
	MomentBoot        = "bpslave connected (boot)"
	MomentUp          = "up"
)

// Timeline returns the moments of machine m's first boot, from qemu's
// start to the node being up.
//
// The node-log moments are the boot server's: its DHCP ACK to iPXE, the
// script request, the start of the kernel and initrd requests and the
// end of the initrd transfer, the first ACK after that (the node's own
// DHCP, from /init), the rootfs request. The kernel's start is derived
// from the serial port: a printk line stamped s that arrived at host time
// a was printed at or before a, so the kernel started at or before a − s;
// the earliest such bound over the lines up to "Run /init" is the
// estimate. (The first lines, stamped 0.000000, are buffered until the
// serial console registers about a second later, so they alone would put
// the start that much too late.)
func (c *Cluster) Timeline(m *Machine) []Moment {
	marks := []Moment{{MomentQEMU, m.Started, "lab"}}
	node := -1
	if mac, err := config.ParseMAC(m.VM.MAC.String()); err == nil {
		if cfg, err := config.Load(c.Config, config.Options{}); err == nil {
			if mt := cfg.Lookup(mac); mt.Kind == config.KindNode {
				node = mt.Node
			}
		}
	}
	var dhcp, script, kernelF, initrdF, fetched, nodeDHCP, rootfs time.Time
	if node >= 0 {
		lines, _ := nodelog.Read(c.LogDir, node) // none: every node-log moment unseen
		for _, l := range lines {
			if l.T.Before(m.Started.Truncate(time.Second)) {
				continue // an earlier boot's
			}
			switch {
			case dhcp.IsZero() && strings.Contains(l.Text, "→ ACK"):
				dhcp = l.T
			case script.IsZero() && strings.Contains(l.Text, "GET /ipxe/"):
				script = l.T
			case kernelF.IsZero() && strings.Contains(l.Text, "GET /boot/kernel"):
				kernelF = l.T
			case initrdF.IsZero() && strings.Contains(l.Text, "GET /boot/initrd: ") && !strings.Contains(l.Text, ": sent "):
				initrdF = l.T
			case fetched.IsZero() && !initrdF.IsZero() && strings.Contains(l.Text, "GET /boot/initrd: sent "):
				fetched = l.T
			case nodeDHCP.IsZero() && !kernelF.IsZero() && strings.Contains(l.Text, "→ ACK"):
				nodeDHCP = l.T
			case rootfs.IsZero() && strings.Contains(l.Text, "GET "+bootparam.DefaultRootfs):
				rootfs = l.T
			}
		}
	}
	marks = append(marks, Moment{MomentDHCP, dhcp, "node log"}, Moment{MomentScript, script, "node log"},
		Moment{MomentKernelFetch, kernelF, "node log"}, Moment{MomentInitrdFetch, initrdF, "node log"},
		Moment{MomentFetched, fetched, "node log"})
	var kernel, init time.Time
	for _, l := range m.Lines() {
		if s := printkStamp().FindStringSubmatch(l.Text); s != nil {
			if f, err := strconv.ParseFloat(s[1], 64); err == nil {
				if k := l.T.Add(-time.Duration(f * float64(time.Second))); kernel.IsZero() || k.Before(kernel) {
					kernel = k
				}
			}
		}
		if strings.Contains(l.Text, "Run /init") {
			init = l.T
			break
		}
	}
	marks = append(marks, Moment{MomentKernel, kernel, "serial"}, Moment{MomentInit, init, "serial"},
		Moment{MomentNodeDHCP, nodeDHCP, "node log"}, Moment{MomentRootfs, rootfs, "node log"})
	var boot, up time.Time
	for _, e := range c.Events() {
		if e.Node != node || e.T.Before(m.Started) {
			continue
		}
		if boot.IsZero() && e.State == "boot" {
			boot = e.T
		}
		if up.IsZero() && e.State == "up" {
			up = e.T
			break
		}
	}
	return append(marks, Moment{MomentBoot, boot, "watch"}, Moment{MomentUp, up, "watch"})
}

var printkStamp = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\[\s*(\d+\.\d+)\]`) }) // compiled on first use, not at every beo start

// FormatTimeline prints marks as a table: each moment relative to the
// first, and the phase that ended there.
func FormatTimeline(marks []Moment) string {
	var b strings.Builder
	var t0, prev time.Time
	for _, m := range marks {
		if m.T.IsZero() {
			fmt.Fprintf(&b, "  %-26s %9s %9s  (%s: not seen)\n", m.Name, "-", "-", m.Source)
			continue
		}
		if t0.IsZero() {
			t0, prev = m.T, m.T
		}
		fmt.Fprintf(&b, "  %-26s %8.2fs %+8.2fs  (%s)\n", m.Name, m.T.Sub(t0).Seconds(), m.T.Sub(prev).Seconds(), m.Source)
		prev = m.T
	}
	return b.String()
}
