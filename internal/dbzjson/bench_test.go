package dbzjson

import "testing"

// BenchmarkEnvelope encodes the golden files' 10-column row (integer,
// varchar, text, numeric, timestamptz, text[], jsonb, bytea, boolean,
// double precision) as a create event with a compiled Encoder.
func BenchmarkEnvelope(b *testing.B) {
	enc := NewEncoder(customers())
	row := customerRow()
	src := streamingSource()
	b.ReportAllocs()
	var n int
	for b.Loop() {
		out, err := enc.Envelope(OpCreate, nil, row, src, processedAt)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.SetBytes(int64(n))
}

// BenchmarkEnvelopeFreeFunction is the same through the package-level
// Envelope, which looks the Encoder up in its cache.
func BenchmarkEnvelopeFreeFunction(b *testing.B) {
	rel := customers()
	row := customerRow()
	src := streamingSource()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Envelope(rel, OpCreate, nil, row, src, processedAt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnvelopeUpdate encodes an update with full before and after
// images (REPLICA IDENTITY FULL), the largest common event.
func BenchmarkEnvelopeUpdate(b *testing.B) {
	enc := NewEncoder(customers())
	row := customerRow()
	src := streamingSource()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Envelope(OpUpdate, row, row, src, processedAt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKey(b *testing.B) {
	enc := NewEncoder(customers())
	row := customerRow()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Key(row); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendEnvelope reuses one buffer: the cost of encoding alone.
func BenchmarkAppendEnvelope(b *testing.B) {
	enc := NewEncoder(customers())
	row := customerRow()
	src := streamingSource()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = enc.AppendEnvelope(buf[:0], OpCreate, nil, row, src, processedAt); err != nil {
			b.Fatal(err)
		}
	}
}
