package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DefaultURL is where clients find the master's /api/stats.
const DefaultURL = "http://" + DefaultAddr

// URLEnv names the environment variable that overrides DefaultURL for
// beostat and beostatus (beo sim and beo lab set it).
const URLEnv = "BEOSTAT_URL"

// Fetch reads base/api/stats; spec, if not empty, limits it to a node spec.
// c nil means http.DefaultClient; ctx bounds the whole request.
func Fetch(ctx context.Context, c *http.Client, base, spec string) (Snapshot, error) {
	if c == nil {
		c = http.DefaultClient
	}
	u, err := url.Parse(strings.TrimSuffix(base, "/") + "/api/stats")
	if err != nil {
		return Snapshot{}, fmt.Errorf("stats URL: %w", err)
	}
	if spec != "" {
		u.RawQuery = url.Values{"node": {spec}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Snapshot{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Snapshot{}, fmt.Errorf("fetch stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return Snapshot{}, fmt.Errorf("fetch stats: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	var snap Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return Snapshot{}, fmt.Errorf("fetch stats: decode: %w", err)
	}
	return snap, nil
}
