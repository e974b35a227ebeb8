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
	var snap Snapshot
	err := get(ctx, c, base, "/api/stats", spec, &snap)
	if err != nil {
		return Snapshot{}, fmt.Errorf("fetch stats: %w", err)
	}
	return snap, nil
}

// FetchJobs reads base/api/jobs, as Fetch does base/api/stats.
func FetchJobs(ctx context.Context, c *http.Client, base, spec string) (JobsDoc, error) {
	var doc JobsDoc
	if err := get(ctx, c, base, "/api/jobs", spec, &doc); err != nil {
		return JobsDoc{}, fmt.Errorf("fetch jobs: %w", err)
	}
	return doc, nil
}

// get decodes the JSON document at base+path (?node=spec) into v.
func get(ctx context.Context, c *http.Client, base, path, spec string, v any) error {
	if c == nil {
		c = http.DefaultClient
	}
	u, err := url.Parse(strings.TrimSuffix(base, "/") + path)
	if err != nil {
		return fmt.Errorf("URL: %w", err)
	}
	if spec != "" {
		u.RawQuery = url.Values{"node": {spec}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}
