package kubecluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// etcdFile records, in a cluster's folder, the etcd it last started on.
const etcdFile = "etcd-endpoint"

// DeleteData deletes what the cluster whose folder is dir keeps in etcd (everything
// under its prefix), on the etcd it last started on. The cluster must be stopped. A
// folder of a cluster that never started holds nothing to delete.
func DeleteData(ctx context.Context, dir string) error {
	prefix, err := os.ReadFile(filepath.Join(dir, prefixFile))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	endpoint, err := os.ReadFile(filepath.Join(dir, etcdFile))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = etcdRange(ctx, "deleterange", strings.TrimSpace(string(endpoint)), strings.TrimSpace(string(prefix))+"/")
	return err
}

// EtcdKeys counts the keys under prefix in the etcd at endpoint.
func EtcdKeys(ctx context.Context, endpoint, prefix string) (int64, error) {
	return etcdRange(ctx, "range", endpoint, prefix)
}

// etcdRange calls etcd's JSON gateway for every key that starts with prefix: "range"
// counts them, "deleterange" deletes them (and counts what it deleted).
func etcdRange(ctx context.Context, op, endpoint, prefix string) (int64, error) {
	end := []byte(prefix)
	end[len(end)-1]++
	body := map[string]any{
		"key":       base64.StdEncoding.EncodeToString([]byte(prefix)),
		"range_end": base64.StdEncoding.EncodeToString(end),
	}
	if op == "range" {
		body["count_only"] = true
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/v3/kv/"+op, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("etcd at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("etcd at %s answered %s to %s", endpoint, resp.Status, op)
	}
	var out struct {
		Count   string `json:"count"`
		Deleted string `json:"deleted"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	n := out.Count
	if op == "deleterange" {
		n = out.Deleted
	}
	if n == "" {
		return 0, nil
	}
	return strconv.ParseInt(n, 10, 64)
}
