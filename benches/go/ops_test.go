// Go twins of the `Ops` group of benches/benches/go_suite.rs, and of the Go benchmarks that
// newer Go releases have but older ones lack (ErrOK, ErrCanceled). Run by benches/run.sh with
// `go test -bench . -benchmem -run '^$'` in this directory.
package ctxbench

import (
	"context"
	"runtime"
	"testing"
	"time"
)

type key struct{}

var sink interface{}

func BenchmarkOps(b *testing.B) {
	bg := context.Background()
	b.Run("WithCancel+cancel", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithCancel(bg)
			cancel()
			sink = ctx
		}
	})
	parent, parentCancel := context.WithCancel(bg)
	defer parentCancel()
	b.Run("ChildOfOpen+cancel", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithCancel(parent)
			cancel()
			sink = ctx
		}
	})
	b.Run("WithTimeout+cancel", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithTimeout(bg, time.Hour)
			cancel()
			sink = ctx
		}
	})
	b.Run("WithValue", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			sink = context.WithValue(bg, key{}, 7)
		}
	})
	b.Run("ErrOpen", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if parent.Err() != nil {
				b.Fatal("open context has an error")
			}
		}
	})
	closed, closeIt := context.WithCancel(bg)
	closeIt()
	b.Run("ErrCanceled", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if closed.Err() == nil {
				b.Fatal("canceled context has no error")
			}
		}
	})
	timed, timedCancel := context.WithTimeout(bg, time.Hour)
	defer timedCancel()
	b.Run("ErrOpenDeadline", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if timed.Err() != nil {
				b.Fatal("open context has an error")
			}
		}
	})
	b.Run("IsDoneOpen", func(b *testing.B) {
		d := parent.Done()
		_ = d
		for i := 0; i < b.N; i++ {
			select {
			case <-parent.Done():
				b.Fatal("open context is done")
			default:
			}
		}
	})
	b.Run("IsDoneCanceled", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			select {
			case <-closed.Done():
			default:
				b.Fatal("canceled context is not done")
			}
		}
	})
	valued := context.WithValue(bg, key{}, "value")
	b.Run("ValueHit", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if valued.Value(key{}) == nil {
				b.Fatal("value missing")
			}
		}
	})
}

func BenchmarkErrOK(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < b.N; i++ {
		if err := ctx.Err(); err != nil {
			b.Fatalf("expected nil context error, got %v", err)
		}
	}
}

func BenchmarkErrCanceled(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < b.N; i++ {
		if err := ctx.Err(); err == nil {
			b.Fatal("expected context error")
		}
	}
}

// BenchmarkFootprint reports the heap kept by 1,000,000 idle children of one open parent
// (B/child), as benches/benches/memory.rs does for ctx and tokio-util.
func BenchmarkFootprint(b *testing.B) {
	const n = 1000000
	for i := 0; i < b.N; i++ {
		parent, cancel := context.WithCancel(context.Background())
		held := make([]context.CancelFunc, n)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for j := range held {
			_, held[j] = context.WithCancel(parent)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/child")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/child")
		runtime.KeepAlive(held)
		cancel()
	}
}
