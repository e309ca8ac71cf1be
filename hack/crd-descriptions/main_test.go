package main

import "testing"

func TestUnwrap(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"one line", "one line"},
		{"a sentence that\nbreaks here", "a sentence that breaks here"},
		{"first paragraph\ngoes on.\n\nsecond\none.", "first paragraph goes on.\n\nsecond one."},
		{"many\n\n\n\nblank lines  \nand trailing spaces\n", "many\n\nblank lines and trailing spaces"},
		{"a list:\n- one\n- two\nmore of two", "a list:\n- one\n- two more of two"},
		{"code:\n  x := 1\n  y := 2", "code:\n  x := 1\n  y := 2"},
	} {
		if got := unwrap(tt.in); got != tt.want {
			t.Errorf("unwrap(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWalkSchemaLeavesPropertiesNamedDescription(t *testing.T) {
	schema := map[string]any{
		"description": "an object\nwith a field",
		"properties": map[string]any{
			"description": map[string]any{"type": "string", "description": "the\ndescription"},
			"items": map[string]any{
				"type":  "array",
				"items": map[string]any{"description": "one\nitem"},
			},
		},
	}
	walkSchema(schema)
	props := schema["properties"].(map[string]any)
	field := props["description"].(map[string]any)
	item := props["items"].(map[string]any)["items"].(map[string]any)
	for _, c := range []struct{ got, want string }{
		{schema["description"].(string), "an object with a field"},
		{field["description"].(string), "the description"},
		{item["description"].(string), "one item"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if field["type"] != "string" {
		t.Errorf("the property named description lost its type: %v", field)
	}
}
