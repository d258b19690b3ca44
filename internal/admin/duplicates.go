package admin

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// duplicateKey returns the path of the first key repeated within one JSON
// object of body ("self_serve", "settings.url", "items[2].id"), or "" when
// every object's keys are distinct. Keys are compared ignoring case, as
// encoding/json matches them to fields. encoding/json keeps the last of
// repeated keys silently; the API refuses them instead, so that what a client
// sent twice is never half-read. body must be valid JSON.
func duplicateKey(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	path, _ := duplicateIn(dec, "")
	return path
}

// duplicateIn reads one JSON value from dec and returns the path of a
// repeated key inside it. at is the value's own path.
func duplicateIn(dec *json.Decoder, at string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return "", err
			}
			key, _ := keyTok.(string)
			path := key
			if at != "" {
				path = at + "." + key
			}
			folded := strings.ToLower(key)
			if seen[folded] {
				return path, nil
			}
			seen[folded] = true
			if dup, err := duplicateIn(dec, path); dup != "" || err != nil {
				return dup, err
			}
		}
		_, err = dec.Token() // '}'
		return "", err
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if dup, err := duplicateIn(dec, at+"["+strconv.Itoa(i)+"]"); dup != "" || err != nil {
				return dup, err
			}
		}
		_, err = dec.Token() // ']'
		return "", err
	}
	return "", nil
}
