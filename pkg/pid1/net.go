package pid1

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VendorClass is the DHCP option 60 beoclient sends, so the boot server
// can tell the node's init from its firmware (PXEClient) and iPXE.
const VendorClass = "beoclient"

// DHCP timing: each interface gets linkWait to show a carrier, then
// dhcpTries attempts of dhcpTimeout each (the server answers in
// milliseconds; a short timeout makes a DISCOVER lost to a port that was
// not forwarding yet cost half a second, not one; a late answer to an
// earlier attempt still counts, as the transaction ID stays).
const (
	linkWait    = 10 * time.Second
	dhcpTimeout = 500 * time.Millisecond
	dhcpTries   = 60
)

// nics returns the interfaces DHCP runs on: every non-loopback device
// with a hardware address.
func nics() ([]netlink.Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var ifs []netlink.Link
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || l.Type() != "device" || len(a.HardwareAddr) == 0 {
			continue
		}
		ifs = append(ifs, l)
	}
	return ifs, nil
}

// linksUp sets every NIC administratively up, so the carrier (and a
// switch port's forwarding) comes while init does other work; DHCP
// later finds the link ready.
func linksUp(log *slog.Logger) {
	ifs, err := nics()
	if err != nil {
		log.Warn("links up", "err", err)
		return
	}
	for _, l := range ifs {
		if err := netlink.LinkSetUp(l); err != nil {
			log.Warn("link up", "iface", l.Attrs().Name, "err", err)
		}
	}
}

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
	ifs, err := nics()
	if err != nil {
		return lease{}, err
	}
	if len(ifs) == 0 {
		return lease{}, errors.New("no network interface (is the NIC's module in the initrd?)")
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(VendorClass)),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter,
			dhcpv4.OptionDomainNameServer, dhcpv4.OptionHostName, dhcpv4.OptionDomainName),
		dhcpv4.WithNetboot,
	}
	results := make(chan dhcpResult, len(ifs))
	for _, l := range ifs {
		go func() { results <- request(ctx, l, mods) }()
	}
	first := make(chan lease, 1)
	go func() {
		var errs []error
		got := false
		for range ifs {
			r := <-results
			name := r.link.Attrs().Name
			if r.err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, r.err))
				log.Warn("dhcp failed", "iface", name, "err", r.err)
				continue
			}
			p := dhclient.NewPacket4(r.link, r.ack)
			if err := p.Configure(); err != nil {
				errs = append(errs, fmt.Errorf("%s: configure: %w", name, err))
				log.Warn("dhcp lease not applied", "iface", name, "err", err)
				continue
			}
			l := lease{iface: name, addr: r.ack.YourIPAddr, server: r.ack.ServerIdentifier()}
			if h := r.ack.HostName(); h != "" {
				if err := unix.Sethostname([]byte(h)); err != nil {
					log.Warn("set hostname", "err", err)
				}
			}
			if ns, sl, dom := p.GatherDNSSettings(); len(ns) > 0 {
				if err := dhclient.WriteDNSSettings(ns, sl, dom, dhclient.ResolvConfPath); err != nil {
					log.Warn("resolv.conf", "err", err)
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

// dhcpResult is one interface's DHCP outcome: the ACK, or why not.
type dhcpResult struct {
	link netlink.Link
	ack  *dhcpv4.DHCPv4
	err  error
}

// request waits for link's carrier and gets a lease on it (DISCOVER,
// OFFER, REQUEST, ACK through insomniacslk's nclient4).
func request(ctx context.Context, link netlink.Link, mods []dhcpv4.Modifier) dhcpResult {
	name := link.Attrs().Name
	if l, err := waitCarrier(ctx, name, linkWait); err != nil {
		return dhcpResult{link: link, err: err}
	} else {
		link = l
	}
	c, err := nclient4.New(name, nclient4.WithTimeout(dhcpTimeout), nclient4.WithRetry(dhcpTries))
	if err != nil {
		return dhcpResult{link: link, err: err}
	}
	defer c.Close()
	l, err := c.Request(ctx, mods...)
	if err != nil {
		return dhcpResult{link: link, err: err}
	}
	return dhcpResult{link: link, ack: l.ACK}
}

// carrierPoll is how often waitCarrier looks at the link.
const carrierPoll = 10 * time.Millisecond

// waitCarrier sets interface name up and waits up to d for the driver to
// report a carrier (IFF_LOWER_UP). It does not wait for the operational
// state to say "up", as u-root's dhclient.IfUp does: the kernel's link
// watcher updates that at most once a second, and the driver's own
// carrier event at probe time has just used that second — measured, it
// held DHCP back 0.4–0.8 s after the link could carry packets. (The link
// is up with a carrier, so its queue is active and a DISCOVER goes out.)
func waitCarrier(ctx context.Context, name string, d time.Duration) (netlink.Link, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var l netlink.Link
	for {
		var err error
		l, err = netlink.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("link %s: %w", name, err)
		}
		a := l.Attrs()
		if a.Flags&net.FlagUp == 0 {
			if err := netlink.LinkSetUp(l); err != nil {
				return l, fmt.Errorf("link %s up: %w", name, err)
			}
		} else if a.RawFlags&unix.IFF_LOWER_UP != 0 {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return l, fmt.Errorf("link %s: no carrier within %v", name, d)
		case <-time.After(carrierPoll):
		}
	}
}
