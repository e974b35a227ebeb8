package pid1

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VendorClass is the DHCP option 60 beoclient sends, so the boot server
// can tell the node's init from its firmware (PXEClient) and iPXE.
const VendorClass = "beoclient"

// DHCP timing: each interface gets linkWait to show a carrier, then
// dhcpTries attempts of dhcpTimeout each.
const (
	linkWait    = 10 * time.Second
	dhcpTimeout = time.Second
	dhcpTries   = 30
)

// lease is one configured interface.
type lease struct {
	iface  string
	addr   net.IP
	server net.IP // DHCP server identifier
}

// network brings up lo, then runs DHCP on every other interface that has
// a link, in parallel, configuring each as its lease arrives (address,
// routes, resolv.conf). It returns when the first interface is
// configured; the others finish in the background. It fails only if no
// interface gets a lease.
func network(ctx context.Context, log *slog.Logger) (lease, error) {
	if lo, err := netlink.LinkByName("lo"); err == nil {
		if err := netlink.LinkSetUp(lo); err != nil {
			log.Warn("lo up", "err", err)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return lease{}, fmt.Errorf("list interfaces: %w", err)
	}
	var ifs []netlink.Link
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || l.Type() != "device" || len(a.HardwareAddr) == 0 {
			continue
		}
		ifs = append(ifs, l)
	}
	if len(ifs) == 0 {
		return lease{}, errors.New("no network interface (is the NIC's module in the initrd?)")
	}
	cfg := dhclient.Config{
		Timeout: dhcpTimeout,
		Retries: dhcpTries,
		Modifiers4: []dhcpv4.Modifier{
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier(VendorClass)),
			dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter,
				dhcpv4.OptionDomainNameServer, dhcpv4.OptionHostName, dhcpv4.OptionDomainName),
		},
	}
	first := make(chan lease, 1)
	results := dhclient.SendRequests(ctx, ifs, true, false, cfg, linkWait)
	go func() {
		var errs []error
		got := false
		for r := range results {
			name := r.Interface.Attrs().Name
			if r.Err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, r.Err))
				log.Warn("dhcp failed", "iface", name, "err", r.Err)
				continue
			}
			if err := r.Lease.Configure(); err != nil {
				errs = append(errs, fmt.Errorf("%s: configure: %w", name, err))
				log.Warn("dhcp lease not applied", "iface", name, "err", err)
				continue
			}
			m, _ := r.Lease.Message()
			l := lease{iface: name}
			if m != nil {
				l.addr = m.YourIPAddr
				l.server = m.ServerIdentifier()
				if h := m.HostName(); h != "" {
					if err := unix.Sethostname([]byte(h)); err != nil {
						log.Warn("set hostname", "err", err)
					}
				}
				ns, sl, dom := dhclient.NewPacket4(r.Interface, m).GatherDNSSettings()
				if len(ns) > 0 {
					if err := dhclient.WriteDNSSettings(ns, sl, dom, dhclient.ResolvConfPath); err != nil {
						log.Warn("resolv.conf", "err", err)
					}
				}
			}
			log.Info("interface configured", "iface", name, "addr", l.addr)
			if !got {
				got = true
				first <- l
			}
		}
		if !got {
			errs = append(errs, errors.New("no DHCP lease on any interface"))
			close(first)
			log.Error("network", "err", errors.Join(errs...))
		}
	}()
	select {
	case l, ok := <-first:
		if !ok {
			return lease{}, fmt.Errorf("no DHCP lease on %d interface(s)", len(ifs))
		}
		return l, nil
	case <-ctx.Done():
		return lease{}, ctx.Err()
	}
}
