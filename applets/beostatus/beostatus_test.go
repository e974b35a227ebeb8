package beostatus

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestProxy(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: snapshot\ndata: {}\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done() // a stream that stays open: must arrive unbuffered
			return
		}
		io.WriteString(w, "page "+r.URL.RequestURI())
	}))
	defer upstream.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(upstream.URL)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, target) }()
	base := "http://" + ln.Addr().String()

	resp, err := http.Get(base + "/api/stats?node=3")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := string(b); got != "page /api/stats?node=3" {
		t.Errorf("GET through proxy = %q", got)
	}
	resp, err = http.Post(base+"/api/stats", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST = %s, want 405", resp.Status)
	}
	req, _ := http.NewRequest("GET", base+"/api/jobs", nil)
	req.Host = "rebind.attacker.example" // a page that pointed its domain here
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET with a foreign Host = %s, want 403", resp.Status)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err = c.Get(base + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	line := make([]byte, len("event: snapshot"))
	if _, err := io.ReadFull(resp.Body, line); err != nil || string(line) != "event: snapshot" {
		t.Errorf("event stream: %q %v", line, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return")
	}
}
