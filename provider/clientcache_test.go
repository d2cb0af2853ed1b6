package provider

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
)

// countingReader is a client registry that counts its reads.
type countingReader struct {
	clients map[string]*store.Client
	err     error
	reads   int
}

func (c *countingReader) GetOAuthClient(_ context.Context, id string) (*store.Client, error) {
	c.reads++
	if c.err != nil {
		return nil, c.err
	}
	if cl, ok := c.clients[id]; ok {
		return cl, nil
	}
	return nil, store.ErrNotFound
}

func TestClientCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	src := &countingReader{clients: map[string]*store.Client{"rp": {ID: "rp", Name: "RP"}}}
	cc := NewClientCache(src, func() time.Time { return now })
	get := func(id string) (*store.Client, error) { return cc.GetOAuthClient(ctx, id) }

	for range 3 {
		if c, err := get("rp"); err != nil || c.Name != "RP" {
			t.Fatalf("get = %v, %v", c, err)
		}
	}
	if src.reads != 1 {
		t.Fatalf("three gets within the TTL read the store %d times, want 1", src.reads)
	}

	// A changed registration shows once the entry expires.
	src.clients["rp"] = &store.Client{ID: "rp", Name: "Renamed"}
	now = now.Add(ClientTTL - time.Nanosecond)
	if c, _ := get("rp"); c.Name != "RP" {
		t.Fatalf("before expiry got %q", c.Name)
	}
	now = now.Add(time.Nanosecond)
	if c, _ := get("rp"); c.Name != "Renamed" {
		t.Fatalf("after expiry got %q, want the new registration", c.Name)
	}

	// Misses and failures are not remembered: a client registered or a
	// database back a moment later is found at once.
	if _, err := get("new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown client: %v", err)
	}
	src.clients["new"] = &store.Client{ID: "new"}
	if _, err := get("new"); err != nil {
		t.Fatalf("client registered after a miss: %v", err)
	}
	now = now.Add(ClientTTL)
	src.err = errors.New("database down")
	if _, err := get("rp"); err == nil {
		t.Fatal("an expired entry was served while the store failed")
	}
	src.err = nil
	if _, err := get("rp"); err != nil {
		t.Fatalf("after the store recovered: %v", err)
	}
}

func TestClientCacheBounded(t *testing.T) {
	ctx := context.Background()
	src := &countingReader{clients: map[string]*store.Client{}}
	for i := range maxCachedClients + 10 {
		id := fmt.Sprint("c", i)
		src.clients[id] = &store.Client{ID: id}
	}
	cc := NewClientCache(src, time.Now)
	for i := range maxCachedClients + 10 {
		if _, err := cc.GetOAuthClient(ctx, fmt.Sprint("c", i)); err != nil {
			t.Fatal(err)
		}
		if n := len(cc.clients); n > maxCachedClients {
			t.Fatalf("cache holds %d clients, bound is %d", n, maxCachedClients)
		}
	}
}
