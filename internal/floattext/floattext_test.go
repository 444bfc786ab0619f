package floattext

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestJavaVectors checks AppendJava against every line of testdata/java.txt,
// printed by JDK 25 for special values, powers of ten and of two and their
// neighbours, the decimals d×10^n, the smallest subnormals and random bit
// patterns.
func TestJavaVectors(t *testing.T) {
	checkVectors(t, "testdata/java.txt", AppendJava)
}

// TestPostgresVectors checks AppendPostgres against every line of
// testdata/postgres.txt, printed by PostgreSQL 15 for values of the same
// kinds.
func TestPostgresVectors(t *testing.T) {
	checkVectors(t, "testdata/postgres.txt", AppendPostgres)
}

// checkVectors reads lines "d <bits> <text>" (a float64) or "f <bits>
// <text>" (a float32), the bits in hexadecimal, and checks that format
// writes text for each.
func checkVectors(t *testing.T, path string, format func([]byte, float64, int) []byte) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	lines, failures := 0, 0
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			t.Fatalf("%s:%d: %q is not <kind> <bits> <text>", path, n, line)
		}
		bits, err := strconv.ParseUint(fields[1], 16, 64)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		var f float64
		var bitSize int
		switch fields[0] {
		case "d":
			f, bitSize = math.Float64frombits(bits), 64
		case "f":
			f, bitSize = float64(math.Float32frombits(uint32(bits))), 32
		default:
			t.Fatalf("%s:%d: kind %q", path, n, fields[0])
		}
		lines++
		if got := string(format(nil, f, bitSize)); got != fields[2] {
			failures++
			if failures <= 20 {
				t.Errorf("%s:%d: %s %s: got %s, want %s", path, n, fields[0], fields[1], got, fields[2])
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if failures > 0 {
		t.Errorf("%s: %d of %d vectors differ", path, failures, lines)
	}
	if lines < 1000 {
		t.Errorf("%s: only %d vectors", path, lines)
	}
}

func TestAppendJacksonJSON(t *testing.T) {
	cases := []struct {
		name    string
		f       float64
		bitSize int
		want    string
	}{
		{"nan_quoted", math.NaN(), 64, `"NaN"`},
		{"infinity_quoted", math.Inf(1), 64, `"Infinity"`},
		{"minus_infinity_quoted", math.Inf(-1), 32, `"-Infinity"`},
		{"double", 0.1, 64, "0.1"},
		{"float_shortest_as_float", float64(float32(1.1)), 32, "1.1"},
		{"float_as_double", float64(float32(1.1)), 64, "1.100000023841858"},
		{"scientific", 1e7, 64, "1.0E7"},
		{"negative_zero", math.Copysign(0, -1), 64, "-0.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(AppendJacksonJSON(nil, tc.f, tc.bitSize)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
