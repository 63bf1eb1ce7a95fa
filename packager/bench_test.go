package packager

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/stream-downloads/caddy-stream-downloads/packager/storage"
)

// BenchmarkStatus measures the status lookup behind GET …/downloads with 10 000
// downloads in the store, as the API does it while jobs run.
func BenchmarkStatus(b *testing.B) {
	store, err := storage.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10_000 {
		r := storage.Record{Video: fmt.Sprintf("v%d", i), Type: "default", Status: storage.StatusReady,
			Origin: "http://o/x.m3u8", Size: 1, ETag: `"e"`, Created: time.Unix(int64(i), 0)}
		if err := store.SaveRecord(r); err != nil {
			b.Fatal(err)
		}
	}
	m := NewManager(store, Settings{MaxJobs: 1, Concurrency: 1}, zap.NewNop())
	defer m.Destruct()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if st, _ := m.List(context.Background(), fmt.Sprintf("v%d", i%10_000)); len(st) != 1 {
			b.Fatalf("List found %d downloads", len(st))
		}
		i++
	}
}
