package pid1

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// kmsgWriter writes each Write (one slog record) to /dev/kmsg as one
// kernel log record at level info, tagged "beoclient:", so the node's own
// boot messages travel with the kernel's to the master (beoklogd reads
// the kernel log) and show on the console when its log level admits
// them. When the console would not show level info (quiet), the text is
// also written to the console directly.
type kmsgWriter struct {
	mu      sync.Mutex
	kmsg    io.Writer // nil: console only
	console io.Writer // nil: kmsg only
}

// newLogOutput opens /dev/kmsg (under dev) and decides from
// /proc/sys/kernel/printk whether the console needs a direct copy.
func newLogOutput(dev, proc string, console io.Writer) io.Writer {
	// Writes to /dev/kmsg are rate limited (10 per 5 s) unless init says
	// otherwise: a booting node writes more than that.
	os.WriteFile(proc+"/sys/kernel/printk_devkmsg", []byte("on\n"), 0o644)
	f, err := os.OpenFile(dev+"/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return console
	}
	w := &kmsgWriter{kmsg: f}
	if !consoleShowsInfo(proc) {
		w.console = console
	}
	return w
}

// consoleShowsInfo reports whether the console log level (first field of
// /proc/sys/kernel/printk) prints level-6 messages.
func consoleShowsInfo(proc string) bool {
	b, err := os.ReadFile(proc + "/sys/kernel/printk")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return false
	}
	lvl, err := strconv.Atoi(f[0])
	return err == nil && lvl > 6
}

func (w *kmsgWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.console != nil {
		w.console.Write(b)
	}
	if w.kmsg != nil {
		// One record per line; /dev/kmsg takes at most ~1 KiB per write.
		for _, line := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
			if len(line) > 900 {
				line = line[:900]
			}
			// The newline ends the record: without it the kernel keeps
			// the record open for a continuation and shows it to no
			// reader (console, /dev/kmsg) until the next one arrives.
			rec := append([]byte("<6>beoclient: "), line...)
			w.kmsg.Write(append(rec, '\n'))
		}
	}
	return len(b), nil
}
