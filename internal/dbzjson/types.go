package dbzjson

// Built-in type OIDs (pg_type.oid; stable across PostgreSQL releases). The
// real-Postgres test checks this table against pg_type.
const (
	oidBool        = 16
	oidBytea       = 17
	oidChar        = 18
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidJSON        = 114
	oidXML         = 142
	oidBox         = 603
	oidCIDR        = 650
	oidFloat4      = 700
	oidFloat8      = 701
	oidMacaddr8    = 774
	oidMoney       = 790
	oidMacaddr     = 829
	oidInet        = 869
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidTimetz      = 1266
	oidBit         = 1560
	oidVarbit      = 1562
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// builtinTypes pairs the built-in types with their array types.
var builtinTypes = []struct {
	name       string
	oid, array uint32
}{
	{"bool", oidBool, 1000},
	{"bytea", oidBytea, 1001},
	{"char", oidChar, 1002},
	{"name", oidName, 1003},
	{"int8", oidInt8, 1016},
	{"int2", oidInt2, 1005},
	{"int4", oidInt4, 1007},
	{"text", oidText, 1009},
	{"oid", oidOID, 1028},
	{"json", oidJSON, 199},
	{"xml", oidXML, 143},
	{"box", oidBox, 1020},
	{"cidr", oidCIDR, 651},
	{"float4", oidFloat4, 1021},
	{"float8", oidFloat8, 1022},
	{"macaddr8", oidMacaddr8, 775},
	{"money", oidMoney, 791},
	{"macaddr", oidMacaddr, 1040},
	{"inet", oidInet, 1041},
	{"bpchar", oidBPChar, 1014},
	{"varchar", oidVarchar, 1015},
	{"date", oidDate, 1182},
	{"time", oidTime, 1183},
	{"timestamp", oidTimestamp, 1115},
	{"timestamptz", oidTimestamptz, 1185},
	{"interval", oidInterval, 1187},
	{"timetz", oidTimetz, 1270},
	{"bit", oidBit, 1561},
	{"varbit", oidVarbit, 1563},
	{"numeric", oidNumeric, 1231},
	{"uuid", oidUUID, 2951},
	{"jsonb", oidJSONB, 3807},
}

// arrayElem maps the built-in array types to their element types, so that
// an array column is recognised even when the engine does not set Kind 'a'
// (a domain over an array, for example).
var arrayElem = func() map[uint32]uint32 {
	m := make(map[uint32]uint32, len(builtinTypes))
	for _, t := range builtinTypes {
		m[t.array] = t.oid
	}
	return m
}()

// Placeholder elements Debezium uses for unchanged TOASTed arrays: the
// placeholder's bytes as numbers for integer[] and bigint[]
// (UnchangedToastedPlaceholder), a one-element string array otherwise.
var (
	unchangedString      = appendString(nil, UnavailableValuePlaceholder)
	unchangedStringArray = append(append([]byte{'['}, unchangedString...), ']')
	unchangedByteArray   = func() []byte {
		b := []byte{'['}
		for i := 0; i < len(UnavailableValuePlaceholder); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendInt(b, int64(UnavailableValuePlaceholder[i]))
		}
		return append(b, ']')
	}()
)

// codecKind is how one PostgreSQL type is written.
type codecKind uint8

const (
	kString codecKind = iota // text as a JSON string (also the fallback for unknown types)
	kBool
	kInt // int2, int4, int8
	kOID
	kFloat4
	kFloat8
	kNumeric
	kMoney
	kBytea
	kBitBool  // bit(1), varbit(1): BOOLEAN
	kBitBytes // io.debezium.data.Bits
	kDate
	kTime
	kTimetz
	kTimestamp
	kTimestamptz
	kInterval
	kArray
)

// codec writes the values of one column (or of an array's elements).
type codec struct {
	kind      codecKind
	frac      int8   // timestamptz: fixed fraction digits (0 = as few as needed)
	delim     byte   // array: element delimiter
	elem      *codec // array: element codec
	unchanged []byte // JSON written for Unchanged
}

// resolveOID follows a domain to its base type.
func resolveOID(c Column) uint32 {
	if c.Kind == 'd' && c.BaseOID != 0 {
		return c.BaseOID
	}
	return c.TypeOID
}

func newColumnCodec(c Column) *codec {
	oid := resolveOID(c)
	if c.Kind == 'e' {
		return &codec{kind: kString, unchanged: unchangedString}
	}
	elem, isArray := arrayElem[oid]
	if c.Kind == 'a' && c.ElemOID != 0 {
		elem, isArray = c.ElemOID, true
	}
	if !isArray {
		return newScalarCodec(oid, c.TypeMod)
	}
	ec := newScalarCodec(elem, c.TypeMod)
	ac := &codec{kind: kArray, delim: ',', elem: ec, unchanged: unchangedStringArray}
	if elem == oidBox {
		ac.delim = ';'
	}
	if elem == oidInt4 || elem == oidInt8 {
		ac.unchanged = unchangedByteArray
	}
	return ac
}

func newScalarCodec(oid uint32, typmod int32) *codec {
	c := &codec{kind: kString, unchanged: unchangedString}
	switch oid {
	case oidBool:
		c.kind = kBool
	case oidInt2, oidInt4, oidInt8:
		c.kind = kInt
	case oidOID:
		c.kind = kOID
	case oidFloat4:
		c.kind = kFloat4
	case oidFloat8:
		c.kind = kFloat8
	case oidNumeric:
		c.kind = kNumeric
	case oidMoney:
		c.kind = kMoney
	case oidBytea:
		c.kind = kBytea
	case oidBit, oidVarbit:
		// Debezium: BOOLEAN when the length is 1, else Bits. bit's typmod is
		// its length; varbit without one has length 2^31-1.
		if typmod == 1 {
			c.kind = kBitBool
		} else {
			c.kind = kBitBytes
		}
	case oidDate:
		c.kind = kDate
	case oidTime:
		c.kind = kTime
	case oidTimetz:
		c.kind = kTimetz
	case oidTimestamp:
		c.kind = kTimestamp
	case oidTimestamptz:
		c.kind = kTimestamptz
		// ZonedTimestamp pads the fraction to the column's scale: the
		// typmod, or 6 without one. Scale 0 prints no fraction.
		c.frac = 6
		if typmod >= 0 && typmod <= 6 {
			c.frac = int8(typmod)
		}
	case oidInterval:
		c.kind = kInterval
	}
	return c
}
