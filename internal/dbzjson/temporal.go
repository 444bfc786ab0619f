package dbzjson

import (
	"strings"

	"github.com/cdcq/cdcq/internal/civil"
)

// Temporal values in time.precision.mode=isostring. Debezium formats them
// with java.time's ISO formatters at UTC:
//
//	date         IsoDate         ISO_OFFSET_DATE       "2017-09-15Z"
//	time         IsoTime         ISO_OFFSET_TIME       "04:05:11.789Z"
//	timestamp    IsoTimestamp    ISO_OFFSET_DATE_TIME  "2019-07-09T02:28:57.1Z"
//	timetz       ZonedTime       ISO_OFFSET_TIME       "12:05:11Z" (shifted to UTC)
//	timestamptz  ZonedTimestamp  fraction padded to the column scale
//	                                                   "2019-07-09T01:28:10.123456Z"
//
// ISO formatters always print seconds and drop trailing zeros of the
// fraction (no fraction at all when it is zero). Years outside 0000-9999 get
// a sign ("+10000", "-0043"); BC years are astronomical (1 BC is 0000).
// internal/civil writes and reads the dates, clocks and offsets.

// What Debezium emits for PostgreSQL's infinite values (see DEBEZIUM.md):
// timestamptz gives the strings PostgreSQL uses. A streamed date goes
// through DateTimeFormat, which maps infinity to
// PostgresValueConverter.POSITIVE_INFINITY_LOCAL_DATE, parsed from
// "-5877611-06-21" (the sign is Debezium's), and -infinity to
// "-5877611-06-22"; dates of the snapshot and of arrays are pgjdbc's
// stand-ins (jdbc.go). A timestamp is POSITIVE/NEGATIVE_INFINITY_LOCAL_DATE_TIME:
// pgjdbc's stand-in milliseconds (PGStatement.DATE_POSITIVE_INFINITY and
// DATE_NEGATIVE_INFINITY) read as microseconds since the epoch.
const (
	dateInfinityJSON       = `"-5877611-06-21Z"`
	dateMinusInfinityJSON  = `"-5877611-06-22Z"`
	pgDatePositiveInfinity = 9223372036825200000
	pgDateNegativeInfinity = -9223372036832400000
)

var (
	timestampInfinityJSON      = formatEpochMicros(pgDatePositiveInfinity)
	timestampMinusInfinityJSON = formatEpochMicros(pgDateNegativeInfinity)
)

// formatEpochMicros writes microseconds since the epoch as an IsoTimestamp.
func formatEpochMicros(us int64) []byte {
	days, tod := civil.SplitMicros(us)
	y, m, d := civil.Date(days)
	b := []byte{'"'}
	b = civil.AppendISODate(b, y, m, d)
	b = append(b, 'T')
	b = civil.AppendClock(b, tod, 0)
	return append(b, 'Z', '"')
}

func appendDate(dst []byte, s string) ([]byte, error) {
	switch s {
	case "infinity":
		return append(dst, dateInfinityJSON...), nil
	case "-infinity":
		return append(dst, dateMinusInfinityJSON...), nil
	}
	s, bc := cutBC(s)
	y, m, d, rest, ok := civil.ParseDate(s)
	if !ok || rest != "" {
		return dst, errSyntax
	}
	if bc {
		y = 1 - y
	}
	dst = append(dst, '"')
	dst = civil.AppendISODate(dst, y, m, d)
	return append(dst, 'Z', '"'), nil
}

func appendTime(dst []byte, s string) ([]byte, error) {
	t, rest, ok := civil.ParseClock(s)
	if !ok || rest != "" {
		return dst, errSyntax
	}
	// IsoTime adds the value to midnight as a Duration: 24:00:00 wraps.
	dst = append(dst, '"')
	dst = civil.AppendClock(dst, t%civil.MicrosPerDay, 0)
	return append(dst, 'Z', '"'), nil
}

func appendTimetz(dst []byte, s string) ([]byte, error) {
	t, rest, ok := civil.ParseClock(s)
	if !ok {
		return dst, errSyntax
	}
	off, ok := civil.ParseOffset(rest)
	if !ok {
		return dst, errSyntax
	}
	// OffsetTime.parse reads 24:00 as the next day's midnight.
	u := (t - off*civil.MicrosPerSecond) % civil.MicrosPerDay
	if u < 0 {
		u += civil.MicrosPerDay
	}
	dst = append(dst, '"')
	dst = civil.AppendClock(dst, u, 0)
	return append(dst, 'Z', '"'), nil
}

func appendTimestamp(dst []byte, s string) ([]byte, error) {
	return appendTimestampIn(dst, s, nil)
}

// appendTimestampIn writes a timestamp's isostring, its date first passed
// through date when that is not nil (pgjdbc's calendar for array elements).
func appendTimestampIn(dst []byte, s string, date func(y int64, m, d int) (int64, int, int)) ([]byte, error) {
	switch s {
	case "infinity":
		return append(dst, timestampInfinityJSON...), nil
	case "-infinity":
		return append(dst, timestampMinusInfinityJSON...), nil
	}
	y, m, d, t, rest, ok := parseTimestamp(s)
	if !ok || rest != "" {
		return dst, errSyntax
	}
	if date != nil {
		y, m, d = date(y, m, d)
	}
	dst = append(dst, '"')
	dst = civil.AppendISODate(dst, y, m, d)
	dst = append(dst, 'T')
	dst = civil.AppendClock(dst, t, 0)
	return append(dst, 'Z', '"'), nil
}

// appendTimestamptz writes a ZonedTimestamp: shifted to UTC, the fraction
// padded to frac digits (frac 0: as few as needed).
func appendTimestamptz(dst []byte, s string, frac int) ([]byte, error) {
	switch s {
	case "infinity", "-infinity":
		return appendString(dst, s), nil
	}
	y, m, d, t, rest, ok := parseTimestamp(s)
	if !ok {
		return dst, errSyntax
	}
	off, ok := civil.ParseOffset(rest)
	if !ok {
		return dst, errSyntax
	}
	if off != 0 {
		days, tod := civil.SplitMicros(civil.Days(y, m, d)*civil.MicrosPerDay + t - off*civil.MicrosPerSecond)
		y, m, d = civil.Date(days)
		t = tod
	}
	dst = append(dst, '"')
	dst = civil.AppendISODate(dst, y, m, d)
	dst = append(dst, 'T')
	dst = civil.AppendClock(dst, t, frac)
	return append(dst, 'Z', '"'), nil
}

// parseTimestamp reads "YYYY-MM-DD HH:MM:SS[.ffffff]" with an optional
// trailing " BC" (after any offset), returning the astronomical year, the
// time of day in microseconds and the unparsed offset text.
func parseTimestamp(s string) (y int64, m, d int, t int64, rest string, ok bool) {
	s, bc := cutBC(s)
	y, m, d, rest, ok = civil.ParseDate(s)
	if !ok || len(rest) < 2 || rest[0] != ' ' {
		return 0, 0, 0, 0, "", false
	}
	t, rest, ok = civil.ParseClock(rest[1:])
	if !ok {
		return 0, 0, 0, 0, "", false
	}
	if bc {
		y = 1 - y
	}
	return y, m, d, t, rest, true
}

func cutBC(s string) (string, bool) {
	if strings.HasSuffix(s, " BC") {
		return s[:len(s)-3], true
	}
	return s, false
}
