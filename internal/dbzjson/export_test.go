package dbzjson

// BuiltinTypeOIDs exposes the package's table of built-in types to the
// external tests: name -> {oid, array oid}.
func BuiltinTypeOIDs() map[string][2]uint32 {
	m := make(map[string][2]uint32, len(builtinTypes))
	for _, t := range builtinTypes {
		m[t.name] = [2]uint32{t.oid, t.array}
	}
	return m
}
