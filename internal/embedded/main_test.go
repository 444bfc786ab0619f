package embedded

import (
	"testing"

	"github.com/cdcq/cdcq/internal/pgtest"
)

// The benchmarks keep checkpoints in a job-state database on the shared
// test server, started when first needed.
func TestMain(m *testing.M) { pgtest.Main(m) }
