package pid1

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beo-cluster/beo/pkg/modindex"
	"golang.org/x/sys/unix"
)

// The NFS client's chain as Debian 6.1's modules.dep lists it.
const nfsDep = `kernel/net/sunrpc/sunrpc.ko:
kernel/fs/nfs_common/grace.ko:
kernel/fs/netfs/netfs.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/lockd/lockd.ko: kernel/fs/nfs_common/grace.ko kernel/net/sunrpc/sunrpc.ko
kernel/net/dns_resolver/dns_resolver.ko:
kernel/fs/nfs/nfs.ko: kernel/fs/lockd/lockd.ko kernel/fs/nfs_common/grace.ko kernel/net/sunrpc/sunrpc.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/fs/nfs/nfsv4.ko: kernel/net/dns_resolver/dns_resolver.ko kernel/fs/nfs/nfs.ko kernel/fs/lockd/lockd.ko kernel/fs/nfs_common/grace.ko kernel/net/sunrpc/sunrpc.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/drivers/net/virtio_net.ko:
`

// fakeKernel loads module files by listing them Live in a fake
// /proc/modules.
type fakeKernel struct {
	mu     sync.Mutex
	proc   string
	loaded []string
}

func (k *fakeKernel) set(lines ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	os.WriteFile(k.proc, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func (k *fakeKernel) load(p string) error {
	if _, err := os.Stat(p); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	n := modindex.Name(p)
	k.loaded = append(k.loaded, n)
	f, _ := os.OpenFile(k.proc, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "%s 1 0 - Live 0x0\n", n)
	f.Close()
	return nil
}

func modTree(t *testing.T, skip ...string) string {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(nfsDep), 0o644)
	for _, l := range strings.Split(strings.TrimSpace(nfsDep), "\n") {
		p, _, _ := strings.Cut(l, ":")
		if !containsName(skip, modindex.Name(p)) {
			os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
			os.WriteFile(filepath.Join(dir, p), nil, 0o644)
		}
	}
	return dir
}

func containsName(l []string, n string) bool {
	for _, x := range l {
		if x == n {
			return true
		}
	}
	return false
}

func TestLoadModules(t *testing.T) {
	t.Run("dependencies first, loaded ones skipped", func(t *testing.T) {
		k := &fakeKernel{proc: filepath.Join(t.TempDir(), "modules")}
		k.set("sunrpc 1 0 - Live 0x0")
		if err := loadNamed(modTree(t, "sunrpc"), k.proc, []string{"nfsv4", "nfsv3", "nfsv4"}, time.Second, k.load); err != nil {
			t.Fatal(err)
		}
		want := []string{"netfs", "fscache", "grace", "lockd", "nfs", "dns_resolver", "nfsv4"}
		if !reflect.DeepEqual(k.loaded, want) {
			t.Errorf("loaded %v, want %v", k.loaded, want)
		}
	})
	t.Run("a module another loader is loading is waited for", func(t *testing.T) {
		k := &fakeKernel{proc: filepath.Join(t.TempDir(), "modules")}
		k.set("sunrpc 1 0 - Live 0x0", "netfs 1 0 - Loading 0x0")
		time.AfterFunc(100*time.Millisecond, func() { k.set("sunrpc 1 0 - Live 0x0", "netfs 1 0 - Live 0x0") })
		start := time.Now()
		if err := loadNamed(modTree(t, "sunrpc", "netfs"), k.proc, []string{"fscache"}, 5*time.Second, k.load); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) < 100*time.Millisecond || !reflect.DeepEqual(k.loaded, []string{"fscache"}) {
			t.Errorf("loaded %v after %v; want fscache once netfs was live", k.loaded, time.Since(start))
		}
	})
	t.Run("two loaders take turns: each module loaded once", func(t *testing.T) {
		k := &fakeKernel{proc: filepath.Join(t.TempDir(), "modules")}
		k.set()
		dir := modTree(t)
		slow := func(p string) error {
			time.Sleep(5 * time.Millisecond)
			return k.load(p)
		}
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := loadNamed(dir, k.proc, []string{"nfsv4"}, 5*time.Second, slow); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		seen := map[string]int{}
		for _, n := range k.loaded {
			seen[n]++
		}
		if len(k.loaded) != 8 || len(seen) != 8 {
			t.Errorf("loaded %v; want the 8 modules of nfsv4's chain once each", k.loaded)
		}
	})
	t.Run("files gone: loaded by the background loader", func(t *testing.T) {
		k := &fakeKernel{proc: filepath.Join(t.TempDir(), "modules")}
		k.set("netfs 1 0 - Live 0x0", "fscache 1 0 - Live 0x0")
		if err := loadNamed(filepath.Join(t.TempDir(), "gone"), k.proc, []string{"fscache"}, time.Second, k.load); err != nil {
			t.Errorf("all loaded, dir gone: %v", err)
		}
		err := loadNamed(filepath.Join(t.TempDir(), "gone"), k.proc, []string{"nfsv4"}, time.Second, k.load)
		if err == nil || !strings.Contains(err.Error(), "module nfsv4: not loaded") {
			t.Errorf("nfsv4 neither loaded nor on file: %v", err)
		}
	})
	t.Run("not carried: skipped", func(t *testing.T) {
		k := &fakeKernel{proc: filepath.Join(t.TempDir(), "modules")}
		k.set()
		if err := loadNamed(modTree(t), k.proc, []string{"ext4"}, time.Second, k.load); err != nil || len(k.loaded) != 0 {
			t.Errorf("ext4, not in the initrd: %v, loaded %v", err, k.loaded)
		}
	})
	t.Run("bad path", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("../evil.ko:\n"), 0o644)
		if err := loadNamed(dir, filepath.Join(dir, "none"), []string{"evil"}, time.Second, func(string) error { return nil }); err == nil {
			t.Error("no error for a path leaving the directory")
		}
	})
}

func TestBoost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("raising another thread's priority needs root")
	}
	tidc, done := make(chan int), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19)
		tidc <- unix.Gettid()
		<-done
		unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 0)
	}()
	tid := <-tidc
	defer close(done)
	file := filepath.Join(t.TempDir(), "preload.tid")
	os.WriteFile(file, []byte(fmt.Sprintf("%d\n", tid)), 0o644)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mine, _ := unix.Getpriority(unix.PRIO_PROCESS, 0)
	boost(file)
	if got, _ := unix.Getpriority(unix.PRIO_PROCESS, tid); got != mine {
		t.Errorf("the preloading thread's priority is %d after boost, want the caller's %d", got, mine)
	}
	boost(filepath.Join(t.TempDir(), "none")) // no preload: nothing to do
}
