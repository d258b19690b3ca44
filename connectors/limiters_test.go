package connectors

import (
	"testing"
	"time"
)

func TestLimitersPerConnection(t *testing.T) {
	t.Parallel()
	set := NewLimiters()
	a := set.For(KindITGlue, "1", 600, time.Minute)
	if set.For(KindITGlue, "1", 600, time.Minute) != a {
		t.Fatal("same connection got two limiters")
	}
	if set.For(KindITGlue, "2", 600, time.Minute) == a {
		t.Fatal("two connections share a limiter")
	}
	if set.For(KindHudu, "1", 600, time.Minute) == a {
		t.Fatal("two kinds' connections with the same id share a limiter")
	}
	if NewLimiters().For(KindITGlue, "1", 600, time.Minute) == a {
		t.Fatal("two sets share a limiter")
	}
	if first := set.For(KindITGlue, "", 600, time.Minute); set.For(KindITGlue, "", 600, time.Minute) == first {
		t.Fatal("limiters without an id are shared")
	}
	var none *Limiters
	if first := none.For(KindITGlue, "1", 600, time.Minute); none.For(KindITGlue, "1", 600, time.Minute) == first {
		t.Fatal("a nil set shares limiters")
	}
	c := set.For(KindITGlue, "1", 60, time.Minute)
	if c != a || c.Limit() != 1 {
		t.Fatalf("rate change: limit %v", c.Limit())
	}
}
