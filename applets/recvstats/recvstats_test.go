package recvstats

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beo-cluster/beo/applets"
	"github.com/beo-cluster/beo/pkg/dashboard"
	"github.com/beo-cluster/beo/pkg/stats"
	"github.com/beo-cluster/beo/test/testio"
)

func TestRecvstats(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte("nodes 4\niprange 127.0.0.10 127.0.0.13\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	var errb testio.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"-config", cfg, "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0"},
			applets.IO{In: strings.NewReader(""), Out: &errb, Err: &errb})
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()
	re := regexp.MustCompile(`recvstats listening" udp=(\S+) beostatus=(\S+)/ `)
	var m []string
	for deadline := time.Now().Add(5 * time.Second); m == nil; time.Sleep(10 * time.Millisecond) {
		if m = re.FindStringSubmatch(errb.String()); m == nil && time.Now().After(deadline) {
			t.Fatalf("no listening line in:\n%s", errb.String())
		}
	}
	raddr, _ := net.ResolveUDPAddr("udp4", m[1])
	c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 12)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := (&stats.Sample{Claim: -1, MemTotal: 1 << 30}).Append(nil)
	var snap dashboard.Snapshot
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c.Write(b) // UDP: resend until it shows
		snap, err = dashboard.Fetch(ctx, nil, m[2], "")
		if err == nil && len(snap.Nodes) == 4 && snap.Nodes[2].State == "alive" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 2 not alive after 5s: %v %+v\n%s", err, snap, errb.String())
		}
	}
	if snap.Nodes[2].Stats == nil || snap.Nodes[2].Stats.Report.Mem.Total != 1<<30 {
		t.Errorf("node 2 stats %+v", snap.Nodes[2].Stats)
	}
}

func TestRecvstatsBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte("nodes lots\n"), 0o644)
	var errb bytes.Buffer
	err := Run(context.Background(), []string{"-config", cfg, "-http", "off"},
		applets.IO{In: strings.NewReader(""), Out: &errb, Err: &errb})
	if err == nil || !strings.Contains(err.Error(), "config:1") {
		t.Errorf("Run with a broken config: %v, want an error naming config:1", err)
	}
}
