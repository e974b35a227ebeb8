package boot

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/beo-cluster/beo/pkg/bootparam"
	"github.com/beo-cluster/beo/pkg/config"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// This file decides what a node boots: the boot file in a DHCP answer and
// the iPXE script.

// The iPXE binaries handed to firmware PXE, from Debian's ipxe package.
const (
	biosIPXE = "undionly.kpxe"
	efiIPXE  = "snponly.efi"
)

// bootFile returns the file field for w's answer: the iPXE binary for
// firmware PXE, the script URL for iPXE, nothing for anyone else.
func (s *Server) bootFile(req *dhcpv4.DHCPv4, kind clientKind, w who) string {
	if w.kind != config.KindNode {
		return ""
	}
	switch kind {
	case pxeClient:
		if s.o.TFTPPort < 0 {
			return ""
		}
		return ipxeBinary(req.ClientArch())
	case ipxeClient:
		if s.httpPort <= 0 {
			return ""
		}
		return s.url("/ipxe/" + macPath(w.mac))
	}
	return ""
}

// ipxeBinary picks the iPXE build for the client's option 93.
func ipxeBinary(archs []iana.Arch) string {
	for _, a := range archs {
		switch a {
		case iana.EFI_IA32, iana.EFI_X86_64, iana.EFI_BC:
			return efiIPXE
		}
	}
	return biosIPXE
}

// macPath is m as it appears in URLs: 52-54-00-00-00-01.
func macPath(m config.MAC) string { return strings.ReplaceAll(m.String(), ":", "-") }

// url returns the absolute URL of p on this server's HTTP port.
func (s *Server) url(p string) string {
	return "http://" + net.JoinHostPort(s.addr.Addr().String(), strconv.Itoa(s.httpPort)) + p
}

// Script returns node n's iPXE script under cfg, and whether it boots the
// node (false: it exits, boot next device).
func (s *Server) Script(cfg *config.Config, spec config.NodeSpec) (string, bool) {
	if spec.Stage == config.StageLocal || spec.Kernel.None {
		return "#!ipxe\necho beo: node " + strconv.Itoa(spec.Num) + " boots from its next boot device\nexit\n", false
	}
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	b.WriteString("kernel " + s.imageURL(spec.Kernel, "kernel"))
	if cl := s.Cmdline(cfg, spec); cl != "" {
		b.WriteString(" " + cl)
	}
	b.WriteString("\n")
	if !spec.Initrd.None {
		fmt.Fprintf(&b, "initrd %s\n", s.imageURL(spec.Initrd, "initrd"))
	}
	b.WriteString("boot\n")
	return b.String(), true
}

// imageURL is where an image setting is served: the boot directory's
// file when unset, /image/PATH when the config names one.
func (s *Server) imageURL(st config.Setting, dflt string) string {
	if !st.IsSet() {
		return s.url("/boot/" + dflt)
	}
	return s.url("/image/" + strings.TrimPrefix(path.Clean("/"+st.Value), "/"))
}

// Cmdline is a node's kernel command line: its effective
// kernelcommandline (DefaultCmdline when unset) followed by the
// pkg/bootparam options (beo.modules= from Options.Modules); nothing at all when the kernelcommandline is
// none (a memtest or an installer kernel gets no argument it did not ask
// for).
func (s *Server) Cmdline(cfg *config.Config, spec config.NodeSpec) string {
	if spec.CmdLine.None {
		return ""
	}
	ports := cfg.Ports()
	p := bootparam.Defaults()
	p.Master = s.addr.Addr()
	p.Masters = masterList(cfg, spec.Num)
	p.BProc, p.Stats, p.Kickback = ports.BProc, ports.BeoStats, ports.Kickback
	if s.httpPort > 0 {
		p.HTTP = uint16(s.httpPort)
	}
	admin := spec.CmdLine.Value
	if !spec.CmdLine.IsSet() {
		admin = s.o.DefaultCmdline
	}
	if s.o.Modules != nil {
		p.Modules = strings.Join(s.o.Modules(spec.Num), ",")
	}
	if ports.Syslog != bootparam.DefaultSyslog && !strings.Contains(admin, "syslog_server=") {
		p.SyslogServer = netip.AddrPortFrom(p.Master, ports.Syslog).String()
	}
	return strings.TrimSpace(admin + " " + p.String())
}

// imagePath maps an /image/ URL path back to the config's path; false
// unless the running config names that image for some node.
func (s *Server) imagePath(rel string) (string, bool) {
	v := s.view.Load()
	for _, cand := range []string{"/" + rel, rel} {
		if v.images[cand] {
			return cand, true
		}
	}
	// A path written unclean in the config (//boot/./vmlinuz) is served
	// under its clean form.
	for p := range v.images {
		if strings.TrimPrefix(path.Clean("/"+p), "/") == rel {
			return p, true
		}
	}
	return "", false
}
