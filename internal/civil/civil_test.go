package civil

import (
	"testing"
	"time"
)

func TestDaysAndDate(t *testing.T) {
	// Round trips and agreement with the standard library over a wide range.
	for _, days := range []int64{-800_000_000, -719_528, -146_097, -1, 0, 1, 59, 11_016, 2_932_896, 800_000_000} {
		y, m, d := Date(days)
		if back := Days(y, m, d); back != days {
			t.Errorf("days %d -> %d-%d-%d -> %d", days, y, m, d, back)
		}
		tm := time.Unix(days*86400, 0).UTC()
		if int64(tm.Year()) != y || int(tm.Month()) != m || tm.Day() != d {
			t.Errorf("days %d: got %d-%d-%d, time package %v", days, y, m, d, tm)
		}
	}
	for days := int64(-1_000_000); days <= 1_000_000; days += 7 {
		y, m, d := Date(days)
		if Days(y, m, d) != days {
			t.Fatalf("days %d does not round trip", days)
		}
	}
}

func TestFloorDiv(t *testing.T) {
	cases := []struct{ a, b, want int64 }{
		{7, 2, 3}, {-7, 2, -4}, {7, -2, -4}, {-7, -2, 3}, {-8, 2, -4}, {0, 5, 0}, {-1, 86400, -1},
	}
	for _, c := range cases {
		if got := FloorDiv(c.a, c.b); got != c.want {
			t.Errorf("FloorDiv(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestSplitMicros(t *testing.T) {
	cases := []struct{ us, days, tod int64 }{
		{0, 0, 0},
		{MicrosPerDay + 5, 1, 5},
		{-1, -1, MicrosPerDay - 1},
		{-MicrosPerDay, -1, 0},
	}
	for _, c := range cases {
		if days, tod := SplitMicros(c.us); days != c.days || tod != c.tod {
			t.Errorf("SplitMicros(%d) = %d, %d, want %d, %d", c.us, days, tod, c.days, c.tod)
		}
	}
}

func TestAppendDate(t *testing.T) {
	cases := []struct {
		name          string
		y             int64
		m, d          int
		iso, postgres string
	}{
		{"plain", 2017, 9, 15, "2017-09-15", "2017-09-15"},
		{"short_year", 44, 3, 15, "0044-03-15", "0044-03-15"},
		{"year_zero_is_1_bc", 0, 1, 1, "0000-01-01", "0001-01-01"},
		{"bc", -43, 3, 15, "-0043-03-15", "0044-03-15"},
		{"five_digit_year", 10000, 1, 1, "+10000-01-01", "10000-01-01"},
		{"last_four_digit_year", 9999, 12, 31, "9999-12-31", "9999-12-31"},
		{"long_bc", -12345, 6, 1, "-12345-06-01", "12346-06-01"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(AppendISODate(nil, c.y, c.m, c.d)); got != c.iso {
				t.Errorf("AppendISODate = %s, want %s", got, c.iso)
			}
			if got := string(AppendPostgresDate(nil, c.y, c.m, c.d)); got != c.postgres {
				t.Errorf("AppendPostgresDate = %s, want %s", got, c.postgres)
			}
		})
	}
}

func TestAppendClock(t *testing.T) {
	at := func(h, m, s, us int64) int64 {
		return h*MicrosPerHour + m*MicrosPerMinute + s*MicrosPerSecond + us
	}
	cases := []struct {
		name       string
		tod        int64
		fracDigits int
		want       string
	}{
		{"whole", at(10, 30, 1, 0), 0, "10:30:01"},
		{"millis", at(4, 5, 11, 789000), 0, "04:05:11.789"},
		{"micros", at(23, 59, 59, 999999), 0, "23:59:59.999999"},
		{"tenth", at(12, 0, 0, 100000), 0, "12:00:00.1"},
		{"end_of_day", MicrosPerDay, 0, "24:00:00"},
		{"padded_to_6", at(11, 51, 2, 0), 6, "11:51:02.000000"},
		{"padded_to_3", at(11, 51, 2, 100000), 3, "11:51:02.100"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(AppendClock(nil, c.tod, c.fracDigits)); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	cases := []struct {
		in   string
		y    int64
		m, d int
		rest string
		ok   bool
	}{
		{"2017-09-15", 2017, 9, 15, "", true},
		{"2019-07-09 02:28:57", 2019, 7, 9, " 02:28:57", true},
		{"10000-01-01", 10000, 1, 1, "", true},
		{"+10000-01-01Z", 10000, 1, 1, "Z", true},
		{"-0043-03-15", -43, 3, 15, "", true},
		{"2024-2-29", 2024, 2, 29, "", true},
		{"2023-02-29", 2023, 2, 29, "", true}, // ValidDate says no
		{"0005-02-29 BC", 5, 2, 29, " BC", true},
		{"2023-13-01", 0, 0, 0, "", false},
		{"2023-01-00", 0, 0, 0, "", false},
		{"2023-01", 0, 0, 0, "", false},
		{"-01-01", 0, 0, 0, "", false},
		{"", 0, 0, 0, "", false},
	}
	for _, c := range cases {
		y, m, d, rest, ok := ParseDate(c.in)
		if y != c.y || m != c.m || d != c.d || rest != c.rest || ok != c.ok {
			t.Errorf("ParseDate(%q) = %d, %d, %d, %q, %v; want %d, %d, %d, %q, %v",
				c.in, y, m, d, rest, ok, c.y, c.m, c.d, c.rest, c.ok)
		}
	}
}

func TestValidDate(t *testing.T) {
	cases := []struct {
		y     int64
		m, d  int
		valid bool
	}{
		{2024, 2, 29, true},
		{2023, 2, 29, false},
		{1900, 2, 29, false},
		{2000, 2, 29, true},
		{-4, 2, 29, true}, // 5 BC
		{2023, 4, 31, false},
		{2023, 12, 31, true},
		{999_999_999_999_999_999, 1, 1, false},
	}
	for _, c := range cases {
		if got := ValidDate(c.y, c.m, c.d); got != c.valid {
			t.Errorf("ValidDate(%d, %d, %d) = %v, want %v", c.y, c.m, c.d, got, c.valid)
		}
	}
}

func TestParseClock(t *testing.T) {
	cases := []struct {
		in   string
		tod  int64
		rest string
		ok   bool
	}{
		{"04:05:11.789", 4*MicrosPerHour + 5*MicrosPerMinute + 11*MicrosPerSecond + 789000, "", true},
		{"13:51:30.123789+02", 13*MicrosPerHour + 51*MicrosPerMinute + 30*MicrosPerSecond + 123789, "+02", true},
		{"10:15", 10*MicrosPerHour + 15*MicrosPerMinute, "", true},
		{"00:00:00.0000005", 1, "", true},
		{"00:00:00.0000004", 0, "", true},
		{"24:00:00", MicrosPerDay, "", true},
		{"23:59:60", MicrosPerDay, "", true},
		{"24:00:01", 0, "", false},
		{"99:00:00", 0, "", false},
		{"12:60:00", 0, "", false},
		{"12:00:61", 0, "", false},
		{"12", 0, "", false},
		{"", 0, "", false},
	}
	for _, c := range cases {
		tod, rest, ok := ParseClock(c.in)
		if tod != c.tod || rest != c.rest || ok != c.ok {
			t.Errorf("ParseClock(%q) = %d, %q, %v; want %d, %q, %v", c.in, tod, rest, ok, c.tod, c.rest, c.ok)
		}
	}
}

func TestParseOffset(t *testing.T) {
	cases := []struct {
		in  string
		off int64
		ok  bool
	}{
		{"+00", 0, true},
		{"-08", -8 * 3600, true},
		{"+05:30", 5*3600 + 30*60, true},
		{"+0530", 5*3600 + 30*60, true},
		{"+00:00:30", 30, true},
		{"-03:30:15", -(3*3600 + 30*60 + 15), true},
		{"+5", 5 * 3600, true},
		{" Z ", 0, true},
		{"utc", 0, true},
		{"GMT", 0, true},
		{"", 0, false},
		{"+", 0, false},
		{"+053", 0, false},
		{"+-5", 0, false},
		{"05:30", 0, false},
		{"+05:30:15:00", 0, false},
	}
	for _, c := range cases {
		off, ok := ParseOffset(c.in)
		if off != c.off || ok != c.ok {
			t.Errorf("ParseOffset(%q) = %d, %v; want %d, %v", c.in, off, ok, c.off, c.ok)
		}
	}
}
