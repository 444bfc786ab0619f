package prismaschema

import (
	"fmt"
	"strings"
)

// ParseFile parses src into a syntax tree without resolving names. filename
// is used in error messages only. A syntax error stops parsing; the error is
// an ErrorList holding it.
func ParseFile(filename string, src []byte) (*File, error) {
	p := &parser{lex: newLexer(filename, src), filename: filename}
	p.tok = p.lex.next()
	f := p.parseFile()
	if p.err != nil {
		return nil, ErrorList{p.err}
	}
	return f, nil
}

type parser struct {
	lex      *lexer
	tok      token // the current token
	err      *Error
	filename string
	depth    int // nesting of values, bounded by maxValueDepth
}

// maxValueDepth bounds the nesting of arrays and function calls, so that a
// hostile schema cannot exhaust the stack.
const maxValueDepth = 64

// bailout unwinds the parser after the first syntax error.
type bailout struct{}

func (p *parser) advance() token {
	t := p.tok
	p.tok = p.lex.next()
	if p.tok.kind == tokEOF && p.lex.err != nil {
		p.err = p.lex.err
		panic(bailout{})
	}
	return t
}

func (p *parser) failAt(pos Position, format string, args ...any) {
	p.err = &Error{Filename: p.filename, Pos: pos, Msg: fmt.Sprintf(format, args...)}
	panic(bailout{})
}

// expected reports that the current token is not what the grammar needs.
func (p *parser) expected(what string) {
	p.failAt(p.tok.pos, "expected %s, found %s", what, p.tok.describe())
}

func (p *parser) expect(kind tokenKind, what string) token {
	if p.tok.kind != kind {
		p.expected(what)
	}
	return p.advance()
}

// adjacent reports whether the current token starts right where t ended.
func (p *parser) adjacent(t token) bool { return p.tok.start == t.end }

func (p *parser) parseFile() (f *File) {
	f = &File{Name: p.filename}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(bailout); !ok {
				panic(r)
			}
			f = nil
		}
	}()
	if p.lex.err != nil {
		p.err = p.lex.err
		return nil
	}
	var doc []string
	for {
		switch p.tok.kind {
		case tokEOF:
			return f
		case tokNewline:
			// At the top level a blank line detaches the doc comments above it.
			if p.tok.blank {
				doc = nil
			}
			p.advance()
		case tokDoc:
			doc = append(doc, p.tok.text)
			p.advance()
		case tokIdent:
			kind, ok := blockKeywords[p.tok.text]
			if !ok {
				p.expected(`"model", "view", "enum", "type", "datasource" or "generator"`)
			}
			f.Blocks = append(f.Blocks, p.parseBlock(kind, joinDoc(doc)))
			doc = nil
		default:
			p.expected(`"model", "view", "enum", "type", "datasource" or "generator"`)
		}
	}
}

func joinDoc(lines []string) string { return strings.Join(lines, "\n") }

func (p *parser) parseBlock(kind BlockKind, doc string) *Block {
	kw := p.advance()
	b := &Block{Kind: kind, Pos: kw.pos, Doc: doc}
	name := p.expect(tokIdent, kind.String()+" name")
	b.Name, b.NamePos = name.text, name.pos
	p.expect(tokLBrace, fmt.Sprintf(`"{" after %s name`, kind))
	if p.tok.kind == tokDoc {
		// Prisma ignores a doc comment after the opening brace.
		p.advance()
	}
	if p.tok.kind != tokNewline {
		p.expected(`end of line after "{"`)
	}
	var pending []string
	for {
		switch p.tok.kind {
		case tokNewline:
			p.advance()
			continue
		case tokDoc:
			pending = append(pending, p.tok.text)
			p.advance()
			continue
		case tokRBrace:
			p.advance()
			return b
		case tokEOF:
			p.failAt(p.tok.pos, `expected "}" to close %s %q opened at %s, found end of file`, kind, b.Name, kw.pos)
		case tokBlockAttr:
			if kind == DatasourceBlock || kind == GeneratorBlock {
				p.expected(kind.String() + " property")
			}
			b.Attributes = append(b.Attributes, p.parseAttribute())
			pending = nil
			p.endLine(nil)
			continue
		case tokIdent:
		default:
			switch kind {
			case DatasourceBlock, GeneratorBlock:
				p.expected(kind.String() + " property")
			case EnumBlock:
				p.expected("enum value")
			default:
				p.expected("field name")
			}
		}
		doc := pending
		pending = nil
		switch kind {
		case DatasourceBlock, GeneratorBlock:
			b.Properties = append(b.Properties, p.parseProperty())
			p.endLine(nil)
		case EnumBlock:
			e := p.parseEnumEntry()
			b.Values = append(b.Values, e)
			e.Doc = joinDoc(p.endLine(doc))
		default:
			f := p.parseField()
			b.Fields = append(b.Fields, f)
			f.Doc = joinDoc(p.endLine(doc))
		}
	}
}

// endLine consumes an optional trailing doc comment, which it appends to
// doc, and then the end of the line.
func (p *parser) endLine(doc []string) []string {
	if p.tok.kind == tokDoc {
		doc = append(doc, p.tok.text)
		p.advance()
	}
	if p.tok.kind != tokNewline && p.tok.kind != tokEOF {
		p.expected("end of line")
	}
	return doc
}

func (p *parser) parseProperty() *Property {
	name := p.advance()
	p.expect(tokEquals, fmt.Sprintf(`"=" after %q`, name.text))
	return &Property{Name: name.text, Pos: name.pos, Value: p.parseValue()}
}

func (p *parser) parseEnumEntry() *EnumEntry {
	name := p.advance()
	e := &EnumEntry{Name: name.text, Pos: name.pos}
	for p.tok.kind == tokAttr {
		e.Attributes = append(e.Attributes, p.parseAttribute())
	}
	return e
}

func (p *parser) parseField() *Field {
	name := p.advance()
	f := &Field{Name: name.text, Pos: name.pos}
	typ := p.expect(tokIdent, "field type")
	f.Type = FieldType{Name: typ.text, Pos: typ.pos}
	last := typ
	if p.tok.kind == tokLParen {
		if typ.text != "Unsupported" {
			p.failAt(p.tok.pos, "type %s takes no arguments; only Unsupported(\"...\") does", typ.text)
		}
		p.advance()
		s := p.expect(tokString, `database type as a string in Unsupported("...")`)
		last = p.expect(tokRParen, `")" after the database type of Unsupported`)
		f.Type.Unsupported, f.Type.HasArgs = s.text, true
	} else if typ.text == "Unsupported" {
		p.expected(`"(" after Unsupported`)
	}
	if p.tok.kind == tokLBracket && p.adjacent(last) {
		lb := p.advance()
		if p.tok.kind != tokRBracket || !p.adjacent(lb) {
			p.expected(`"]" right after "["`)
		}
		last = p.advance()
		f.Type.List = true
	}
	if p.tok.kind == tokQuestion && p.adjacent(last) {
		last = p.advance()
		f.Type.Optional = true
		if f.Type.List {
			p.failAt(last.pos, "optional lists are not supported; use %s[] or %s?", typ.text, typ.text)
		}
		if p.tok.kind == tokLBracket && p.adjacent(last) {
			p.failAt(p.tok.pos, "optional lists are not supported; use %s[] or %s?", typ.text, typ.text)
		}
	}
	for p.tok.kind == tokAttr {
		f.Attributes = append(f.Attributes, p.parseAttribute())
	}
	if p.tok.kind == tokQuestion || p.tok.kind == tokLBracket {
		p.failAt(p.tok.pos, "%q must follow the type name without a space", p.tok.raw)
	}
	return f
}

func (p *parser) parseAttribute() *Attribute {
	at := p.advance()
	a := &Attribute{Name: at.text, Block: at.kind == tokBlockAttr, Pos: at.pos}
	if p.tok.kind == tokLParen {
		a.Args = p.parseArgs()
	}
	return a
}

// enter and leave track the nesting of argument lists and arrays.
func (p *parser) enter() {
	p.depth++
	if p.depth > maxValueDepth {
		p.failAt(p.tok.pos, "values are nested more than %d deep", maxValueDepth)
	}
}

func (p *parser) leave() { p.depth-- }

// parseArgs parses "(" [argument {"," argument}] ")".
func (p *parser) parseArgs() []*Argument {
	p.enter()
	defer p.leave()
	p.advance() // "("
	args := []*Argument{}
	if p.tok.kind == tokRParen {
		p.advance()
		return args
	}
	for {
		args = append(args, p.parseArgument())
		if p.tok.kind == tokRParen {
			p.advance()
			return args
		}
		p.expect(tokComma, `"," or ")"`)
	}
}

func (p *parser) parseArgument() *Argument {
	if p.tok.kind == tokIdent {
		name := p.tok
		p.advance()
		if p.tok.kind == tokColon {
			p.advance()
			return &Argument{Name: name.text, Pos: name.pos, Value: p.parseValue()}
		}
		v := p.parseValueAfterIdent(name)
		return &Argument{Pos: name.pos, Value: v}
	}
	pos := p.tok.pos
	return &Argument{Pos: pos, Value: p.parseValue()}
}

func (p *parser) parseValue() *Value {
	t := p.tok
	switch t.kind {
	case tokString:
		p.advance()
		return &Value{Kind: StringValue, Pos: t.pos, Text: t.text}
	case tokNumber:
		p.advance()
		return &Value{Kind: NumberValue, Pos: t.pos, Text: t.text}
	case tokIdent:
		p.advance()
		return p.parseValueAfterIdent(t)
	case tokLBracket:
		p.enter()
		defer p.leave()
		p.advance()
		v := &Value{Kind: ArrayValue, Pos: t.pos, Elems: []*Value{}}
		if p.tok.kind == tokRBracket {
			p.advance()
			return v
		}
		for {
			v.Elems = append(v.Elems, p.parseValue())
			if p.tok.kind == tokRBracket {
				p.advance()
				return v
			}
			p.expect(tokComma, `"," or "]"`)
		}
	}
	p.expected("a value")
	return nil
}

// parseValueAfterIdent finishes a constant or a function call whose name,
// ident, has been consumed.
func (p *parser) parseValueAfterIdent(ident token) *Value {
	if p.tok.kind == tokLParen {
		return &Value{Kind: FunctionValue, Pos: ident.pos, Text: ident.text, Args: p.parseArgs()}
	}
	return &Value{Kind: ConstantValue, Pos: ident.pos, Text: ident.text}
}
