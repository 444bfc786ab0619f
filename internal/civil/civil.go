// Package civil owns the proleptic Gregorian calendar on day numbers (days
// since 1970-01-01; astronomical years, in which 1 BC is year 0), which
// PostgreSQL and java.time both use, and the text of dates, clocks and UTC
// offsets as PostgreSQL (DateStyle ISO) and java.time's ISO formatters read
// and write it. Every cdcq package that turns such text into numbers or
// back calls this package instead of doing the arithmetic itself.
//
// This package must not import other cdcq packages.
package civil

import (
	"strconv"
	"strings"
)

// Microseconds in the units of a clock. PostgreSQL keeps times and
// timestamps in microseconds.
const (
	MicrosPerSecond int64 = 1_000_000
	MicrosPerMinute       = 60 * MicrosPerSecond
	MicrosPerHour         = 60 * MicrosPerMinute
	MicrosPerDay          = 24 * MicrosPerHour
)

// FloorDiv returns a/b rounded toward negative infinity (b > 0 or b < 0),
// where Go's / rounds toward zero.
func FloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Days returns the days from 1970-01-01 to the date y-m-d (Howard
// Hinnant's days_from_civil). m and d must be in 1..12 and 1..31; a day
// beyond the end of its month counts on into the next.
func Days(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := FloorDiv(y, 400)
	yoe := y - era*400                     // year of era, 0..399
	mp := int64((m + 9) % 12)              // months since March
	doy := (153*mp+2)/5 + int64(d) - 1     // day of year from March 1st
	doe := yoe*365 + yoe/4 - yoe/100 + doy // day of era
	return era*146097 + doe - 719468       // 719468: 0000-03-01 to 1970-01-01
}

// Date is the inverse of Days: the year, month and day of a day number.
func Date(days int64) (y int64, m, d int) {
	z := days + 719468
	era := FloorDiv(z, 146097)
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

// SplitMicros splits microseconds since 1970-01-01 00:00 into the day
// number and the microseconds since that day's midnight (0 <= tod <
// MicrosPerDay, also before 1970).
func SplitMicros(us int64) (days, tod int64) {
	days = FloorDiv(us, MicrosPerDay)
	return days, us - days*MicrosPerDay
}

// AppendISODate writes a date as java.time's ISO_LOCAL_DATE does: a
// four-digit year, or a signed longer one outside 0000-9999
// ("2017-09-15", "+10000-01-01", "-0043-03-15").
func AppendISODate(dst []byte, y int64, m, d int) []byte {
	switch {
	case y > 9999:
		dst = append(dst, '+')
		dst = strconv.AppendInt(dst, y, 10)
	case y < 0:
		dst = append(dst, '-')
		dst = appendPadded(dst, -y, 4)
	default:
		dst = appendPadded(dst, y, 4)
	}
	return appendMonthDay(dst, m, d)
}

// AppendPostgresDate writes the date part of PostgreSQL's ISO DateStyle:
// the year in at least four digits, a year up to 0 as its BC number
// ("0044-03-15" for -43-03-15). PostgreSQL then ends the whole value (after
// any time and offset) with " BC" when y <= 0; that is the caller's part.
func AppendPostgresDate(dst []byte, y int64, m, d int) []byte {
	if y <= 0 {
		y = 1 - y
	}
	dst = appendPadded(dst, y, 4)
	return appendMonthDay(dst, m, d)
}

func appendMonthDay(dst []byte, m, d int) []byte {
	dst = append(dst, '-')
	dst = append2(dst, int64(m))
	dst = append(dst, '-')
	return append2(dst, int64(d))
}

// AppendClock writes a time of day given in microseconds since midnight
// (up to 24:00:00) as HH:MM:SS and a fraction of exactly fracDigits digits
// (1 to 6), or, when fracDigits is 0, with as few digits as the value
// needs and none when it is whole: as both java.time's ISO formatters and
// PostgreSQL write it ("04:05:11.789", "10:30:01").
func AppendClock(dst []byte, tod int64, fracDigits int) []byte {
	secs, micros := tod/MicrosPerSecond, tod%MicrosPerSecond
	dst = append2(dst, secs/3600)
	dst = append(dst, ':')
	dst = append2(dst, secs/60%60)
	dst = append(dst, ':')
	dst = append2(dst, secs%60)
	if fracDigits == 0 && micros == 0 {
		return dst
	}
	var digits [6]byte
	for i := 5; i >= 0; i-- {
		digits[i] = byte('0' + micros%10)
		micros /= 10
	}
	n := fracDigits
	if n == 0 {
		n = 6
		for digits[n-1] == '0' {
			n--
		}
	}
	dst = append(dst, '.')
	return append(dst, digits[:n]...)
}

// append2 writes 0 <= n < 100 in two digits.
func append2(dst []byte, n int64) []byte {
	return append(dst, byte('0'+n/10), byte('0'+n%10))
}

func appendPadded(dst []byte, v int64, width int) []byte {
	var buf [20]byte
	s := strconv.AppendInt(buf[:0], v, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// ParseDate reads a date [+-]Y-M-D at the start of s (one or more digits
// in each field, as PostgreSQL's ISO input takes them, and java.time's
// signed years) and returns the year, the month (1 to 12), the day (1 to
// 31) and the text after it. Whether the day exists in that month is
// ValidDate's to say, once any " BC" (which PostgreSQL writes after the
// time) has made the year astronomical: 0005-02-29 BC exists.
func ParseDate(s string) (y int64, m, d int, rest string, ok bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	y, s, ok = readNumber(s, 18)
	if !ok || s == "" || s[0] != '-' {
		return 0, 0, 0, "", false
	}
	mm, s, ok := readNumber(s[1:], 18)
	if !ok || s == "" || s[0] != '-' || mm < 1 || mm > 12 {
		return 0, 0, 0, "", false
	}
	dd, s, ok := readNumber(s[1:], 18)
	if !ok || dd < 1 || dd > 31 {
		return 0, 0, 0, "", false
	}
	if neg {
		y = -y
	}
	return y, int(mm), int(dd), s, true
}

// ValidDate reports whether the date y-m-d (an astronomical year) exists:
// not February 30th, nor a year too large to count its days.
func ValidDate(y int64, m, d int) bool {
	yy, mm, dd := Date(Days(y, m, d))
	return yy == y && mm == m && dd == d
}

// ParseClock reads a time of day H:M[:S[.F]] at the start of s and returns
// it in microseconds since midnight, with the text after it. Fractions
// finer than a microsecond are rounded half up, as PostgreSQL rounds them;
// 24:00:00 is the end of the day, and ok is false beyond it.
func ParseClock(s string) (tod int64, rest string, ok bool) {
	h, s, ok := readNumber(s, 18)
	if !ok || s == "" || s[0] != ':' || h > 24 {
		return 0, "", false
	}
	m, s, ok := readNumber(s[1:], 18)
	if !ok || m > 59 {
		return 0, "", false
	}
	var sec, frac int64
	if s != "" && s[0] == ':' {
		sec, s, ok = readNumber(s[1:], 18)
		if !ok || sec > 60 {
			return 0, "", false
		}
		if s != "" && s[0] == '.' {
			i, n := 1, 0
			for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
				if n < 6 {
					frac = frac*10 + int64(s[i]-'0')
				} else if n == 6 && s[i] >= '5' {
					frac++
				}
				n++
			}
			for ; n < 6; n++ {
				frac *= 10
			}
			s = s[i:]
		}
	}
	tod = h*MicrosPerHour + m*MicrosPerMinute + sec*MicrosPerSecond + frac
	if tod > MicrosPerDay {
		return 0, "", false
	}
	return tod, s, true
}

// readNumber reads an unsigned decimal number of one to max digits.
func readNumber(s string, max int) (int64, string, bool) {
	i := 0
	var n int64
	for i < len(s) && i < max && s[i] >= '0' && s[i] <= '9' {
		n = n*10 + int64(s[i]-'0')
		i++
	}
	return n, s[i:], i > 0
}

// ParseOffset reads a whole UTC offset, as PostgreSQL writes it (+HH,
// +HH:MM, +HH:MM:SS) or takes it (also +H, +HHMM, +HHMMSS, Z, UTC, GMT,
// surrounding spaces), and returns it in seconds east of UTC.
func ParseOffset(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "+00", s == "-00", strings.EqualFold(s, "Z"), strings.EqualFold(s, "UTC"), strings.EqualFold(s, "GMT"):
		return 0, true
	}
	if len(s) < 2 || s[0] != '+' && s[0] != '-' {
		return 0, false
	}
	var digits [6]int64
	n := 0
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == ':' {
			continue
		}
		if c < '0' || c > '9' || n == len(digits) {
			return 0, false
		}
		digits[n] = int64(c - '0')
		n++
	}
	var off int64
	switch n {
	case 1:
		off = digits[0] * 3600
	case 2, 4, 6:
		for i, unit := 0, int64(3600); i < n; i, unit = i+2, unit/60 {
			off += (digits[i]*10 + digits[i+1]) * unit
		}
	default:
		return 0, false
	}
	if s[0] == '-' {
		off = -off
	}
	return off, true
}
