package boot

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTransferLogged(t *testing.T) {
	s, dir := testServer(t, baseConfig)
	h := s.Handler()
	for _, method := range []string{"GET", "HEAD"} {
		req := httptest.NewRequest(method, "/boot/initrd", nil)
		req.RemoteAddr = "10.99.0.100:4321" // node 0's address
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%s: code %d", method, rec.Code)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "log", "node.0"))
	if err != nil {
		t.Fatal(err)
	}
	// The request, then its end with the body bytes sent (none for HEAD).
	for _, want := range []string{
		"beoserv: http GET /boot/initrd: 6 bytes\n",
		"beoserv: http GET /boot/initrd: sent 6 bytes in ",
		"beoserv: http HEAD /boot/initrd: sent 0 bytes in ",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("node.0 log lacks %q:\n%s", want, b)
		}
	}
}

// readFromWriter is a ResponseWriter that also has ReadFrom, as net/http's
// own has (sendfile).
type readFromWriter struct {
	*httptest.ResponseRecorder
	readFrom int
}

func (w *readFromWriter) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom++
	return io.Copy(w.ResponseRecorder, r)
}

func TestCountWriter(t *testing.T) {
	inner := &readFromWriter{ResponseRecorder: httptest.NewRecorder()}
	cw := &countWriter{ResponseWriter: inner}
	cw.Write([]byte("abc"))
	// A reader without WriteTo, as http.ServeContent passes (LimitReader).
	io.Copy(cw, io.LimitReader(strings.NewReader("0123456789"), 7))
	if cw.n != 10 || inner.Body.String() != "abc0123456" {
		t.Errorf("counted %d, body %q; want 10, abc0123456", cw.n, inner.Body)
	}
	if inner.readFrom != 1 {
		t.Errorf("ReadFrom of the real writer used %d times, want 1 (sendfile path)", inner.readFrom)
	}
	if cw.Unwrap() != inner {
		t.Error("Unwrap does not return the real writer")
	}
}
