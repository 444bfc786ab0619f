package dbzjson

import "strings"

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

const (
	microsPerSecond = 1_000_000
	microsPerDay    = 86_400 * microsPerSecond
)

// What Debezium emits for PostgreSQL's infinite values (see DEBEZIUM.md):
// timestamptz gives the strings PostgreSQL uses; date and timestamp go
// through the stand-in values of PostgresValueConverter and the JDBC
// driver (PGStatement.DATE_POSITIVE_INFINITY and DATE_NEGATIVE_INFINITY,
// milliseconds since the epoch).
const (
	dateInfinityJSON       = `"+5877611-06-21Z"`
	dateMinusInfinityJSON  = `"-5877611-06-22Z"`
	pgDatePositiveInfinity = 9223372036825200000
	pgDateNegativeInfinity = -9223372036832400000
)

var (
	timestampInfinityJSON      = formatEpochMillis(pgDatePositiveInfinity)
	timestampMinusInfinityJSON = formatEpochMillis(pgDateNegativeInfinity)
)

func formatEpochMillis(ms int64) []byte {
	secs := floorDiv(ms, 1000)
	micros := (ms - secs*1000) * 1000
	days := floorDiv(secs, 86400)
	y, m, d := civilFromDays(days)
	b := []byte{'"'}
	b = appendYMD(b, y, m, d)
	b = append(b, 'T')
	b = appendClock(b, (secs-days*86400)*microsPerSecond+micros, 0)
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
	y, m, d, rest, ok := parseDate(s)
	if !ok || rest != "" {
		return dst, errSyntax
	}
	if bc {
		y = 1 - y
	}
	dst = append(dst, '"')
	dst = appendYMD(dst, y, m, d)
	return append(dst, 'Z', '"'), nil
}

func appendTime(dst []byte, s string) ([]byte, error) {
	t, rest, ok := parseClock(s)
	if !ok || rest != "" {
		return dst, errSyntax
	}
	// IsoTime adds the value to midnight as a Duration: 24:00:00 wraps.
	dst = append(dst, '"')
	dst = appendClock(dst, t%microsPerDay, 0)
	return append(dst, 'Z', '"'), nil
}

func appendTimetz(dst []byte, s string) ([]byte, error) {
	t, rest, ok := parseClock(s)
	if !ok {
		return dst, errSyntax
	}
	off, ok := parseOffset(rest)
	if !ok {
		return dst, errSyntax
	}
	if t == microsPerDay && off == 0 {
		// PostgresTimeBoundary keeps the end of day at UTC as is.
		return append(dst, `"24:00:00Z"`...), nil
	}
	u := (t - off*microsPerSecond) % microsPerDay
	if u < 0 {
		u += microsPerDay
	}
	dst = append(dst, '"')
	dst = appendClock(dst, u, 0)
	return append(dst, 'Z', '"'), nil
}

func appendTimestamp(dst []byte, s string) ([]byte, error) {
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
	dst = append(dst, '"')
	dst = appendYMD(dst, y, m, d)
	dst = append(dst, 'T')
	dst = appendClock(dst, t, 0)
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
	off, ok := parseOffset(rest)
	if !ok {
		return dst, errSyntax
	}
	if off != 0 {
		total := daysFromCivil(y, m, d)*microsPerDay + t - off*microsPerSecond
		days := floorDiv(total, microsPerDay)
		y, m, d = civilFromDays(days)
		t = total - days*microsPerDay
	}
	dst = append(dst, '"')
	dst = appendYMD(dst, y, m, d)
	dst = append(dst, 'T')
	dst = appendClock(dst, t, frac)
	return append(dst, 'Z', '"'), nil
}

// parseTimestamp reads "YYYY-MM-DD HH:MM:SS[.ffffff]" with an optional
// trailing " BC" (after any offset), returning the astronomical year, the
// time of day in microseconds and the unparsed offset text.
func parseTimestamp(s string) (y int64, m, d int, t int64, rest string, ok bool) {
	s, bc := cutBC(s)
	y, m, d, rest, ok = parseDate(s)
	if !ok || len(rest) < 2 || rest[0] != ' ' {
		return 0, 0, 0, 0, "", false
	}
	t, rest, ok = parseClock(rest[1:])
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

// parseDate reads "Y...Y-MM-DD" (at least one year digit).
func parseDate(s string) (y int64, m, d int, rest string, ok bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && i < 10 {
		y = y*10 + int64(s[i]-'0')
		i++
	}
	if i == 0 || len(s) < i+6 || s[i] != '-' || s[i+3] != '-' {
		return 0, 0, 0, "", false
	}
	m, ok1 := twoDigits(s[i+1:])
	d, ok2 := twoDigits(s[i+4:])
	if !ok1 || !ok2 || m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, 0, 0, "", false
	}
	return y, m, d, s[i+6:], true
}

// parseClock reads "HH:MM:SS[.ffffff]" into microseconds since midnight
// (24:00:00 is allowed, as PostgreSQL allows it).
func parseClock(s string) (int64, string, bool) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, "", false
	}
	h, ok1 := twoDigits(s)
	mi, ok2 := twoDigits(s[3:])
	sec, ok3 := twoDigits(s[6:])
	if !ok1 || !ok2 || !ok3 || h > 24 || mi > 59 || sec > 60 {
		return 0, "", false
	}
	t := (int64(h)*3600 + int64(mi)*60 + int64(sec)) * microsPerSecond
	rest := s[8:]
	if len(rest) > 0 && rest[0] == '.' {
		frac, n := int64(0), 0
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			if n < 6 {
				frac = frac*10 + int64(rest[i]-'0')
				n++
			}
			i++
		}
		if i == 1 {
			return 0, "", false
		}
		for ; n < 6; n++ {
			frac *= 10
		}
		t += frac
		rest = rest[i:]
	}
	if t > microsPerDay {
		return 0, "", false
	}
	return t, rest, true
}

// parseOffset reads "+HH", "+HH:MM" or "+HH:MM:SS" (or '-') into seconds
// east of UTC.
func parseOffset(s string) (int64, bool) {
	if len(s) < 3 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	sign := s[0]
	h, ok := twoDigits(s[1:])
	if !ok {
		return 0, false
	}
	off := int64(h) * 3600
	s = s[3:]
	for unit := int64(60); s != ""; unit /= 60 {
		if unit == 0 || len(s) < 3 || s[0] != ':' {
			return 0, false
		}
		v, ok := twoDigits(s[1:])
		if !ok {
			return 0, false
		}
		off += int64(v) * unit
		s = s[3:]
	}
	if sign == '-' {
		off = -off
	}
	return off, true
}

func twoDigits(s string) (int, bool) {
	if len(s) < 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

// appendYMD writes a date as java.time's ISO_LOCAL_DATE does: a four-digit
// year, or a signed longer one ("+10000", "-0043").
func appendYMD(dst []byte, y int64, m, d int) []byte {
	switch {
	case y > 9999:
		dst = append(dst, '+')
		dst = appendInt(dst, y)
	case y < 0:
		dst = append(dst, '-')
		dst = appendPadded(dst, -y, 4)
	default:
		dst = appendPadded(dst, y, 4)
	}
	dst = append(dst, '-')
	dst = appendPadded(dst, int64(m), 2)
	dst = append(dst, '-')
	return appendPadded(dst, int64(d), 2)
}

// appendClock writes HH:MM:SS and the fraction: frac digits exactly, or as
// few as needed when frac is 0.
func appendClock(dst []byte, t int64, frac int) []byte {
	secs, micros := t/microsPerSecond, t%microsPerSecond
	dst = appendPadded(dst, secs/3600, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, secs/60%60, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, secs%60, 2)
	if frac == 0 && micros == 0 {
		return dst
	}
	var digits [6]byte
	for i := 5; i >= 0; i-- {
		digits[i] = byte('0' + micros%10)
		micros /= 10
	}
	n := frac
	if n == 0 {
		n = 6
		for digits[n-1] == '0' {
			n--
		}
	}
	dst = append(dst, '.')
	dst = append(dst, digits[:n]...)
	return dst
}

func appendPadded(dst []byte, v int64, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v >= 10 || width > 1 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	buf[i] = byte('0' + v)
	return append(dst, buf[i:]...)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// daysFromCivil counts days from 1970-01-01 to a proleptic Gregorian date
// (astronomical years), the calendar both PostgreSQL and java.time use.
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400                     // year of era, 0..399
	mp := int64((m + 9) % 12)              // months since March
	doy := (153*mp+2)/5 + int64(d) - 1     // day of year from March 1st
	doe := yoe*365 + yoe/4 - yoe/100 + doy // day of era
	return era*146097 + doe - 719468       // 719468: 0000-03-01 to 1970-01-01
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y int64, m, d int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}
