// Command tlog-verify checks a Mamori ledger with Go's own transparency-log
// code (golang.org/x/mod/sumdb/tlog and golang.org/x/mod/sumdb/note), which
// Mamori did not write: it is the third-party check that Mamori's
// checkpoints, C2SP tiles, entry bundles and proofs are what any tlog client
// expects.
//
// Usage:
//
//	tlog-verify [flags] BASE
//	tlog-verify [-key VKEY] [-origin ORIGIN] -bundle FILE
//
// The second form checks a Mamori evidence bundle (K27.1.3; format
// mamori-evidence-bundle/1, see crates/ledger/src/bundle.rs) with nothing
// but note.Open and tlog.CheckRecord: the checkpoint in the file opens
// under the key (-key, or the one in the file), and every record's
// tlog.RecordHash(leaf) is included at its index in the checkpoint's tree.
//
// BASE is either an http(s) URL (e.g. https://mamori.example/api/v1/ledger)
// or a directory. Under BASE, as SPEC §4 lays it out:
//
//	checkpoint                          the signed note (c2sp.org/tlog-checkpoint)
//	key                                 the verifier key <name>+<hex id>+<base64>
//	tile/<L>/<N>[.p/<W>]                hash tiles (c2sp.org/tlog-tiles, height 8)
//	tile/entries/<N>[.p/<W>]            entry bundles (uint16 length ‖ leaf bytes)
//	proof/inclusion?index=I&size=N      JSON {"hashes": [base64, …], "index": I, "size": N}
//	proof/consistency?from=M&to=N       JSON {"hashes": [base64, …], "from": M, "to": N}
//
// In the directory form the two proof endpoints are files:
//
//	proof/inclusion/I-N.json
//	proof/consistency/M-N.json
//
// and every such file present is checked unless -inclusion or -consistency
// names the proofs to check. Over HTTP, only the proofs named by those flags
// (and the one -prev needs) are fetched.
//
// Flags:
//
//	-key VKEY        the verifier key to trust; without it BASE/key is read
//	                 (which only proves the log is self-consistent).
//	-origin ORIGIN   also require the checkpoint's origin line to be ORIGIN.
//	-token TOKEN     for HTTP: send "Authorization: Bearer TOKEN".
//	-prev FILE       an earlier signed checkpoint: it must verify with the same
//	                 key, and the current log must extend it (its root is
//	                 recomputed from the tiles and the consistency proof
//	                 from its size to the current size is checked).
//	-inclusion I[:N] check the inclusion proof of record I in the tree of
//	                 size N (default: the checkpoint size); repeatable.
//	-consistency M[:N] check the consistency proof from size M to N (default:
//	                 the checkpoint size); repeatable.
//	-entries=false   do not read entry bundles (e.g. for a log whose old
//	                 records were pruned and whose bundles cannot be served).
//
// What it checks:
//
//  1. the checkpoint opens with note.Open under the verifier key
//     (note.NewVerifier), and its body is <origin>, <size>, <base64 root>;
//  2. tlog.TreeHash over tlog.TileHashReader (reading the C2SP tile paths)
//     recomputes the checkpoint's root, and every hash tile of the tree is
//     checked against its parent tile (tlog.HashFromTile, tlog.NodeHash) up
//     to the tiles that root came from (see checkTiles for why this does not
//     rely on TileHashReader alone);
//  3. every entry bundle parses, has the width its path names, and each
//     entry's tlog.RecordHash equals the stored hash tlog.StoredHashIndex(0, i)
//     read through the same authenticated tile reader;
//  4. inclusion proofs with tlog.CheckRecord and consistency proofs with
//     tlog.CheckTree, against roots it computes itself from the tiles;
//  5. with -prev, consistency with the earlier checkpoint.
//
// It prints one line starting with "OK" and exits 0, or prints a line
// starting with "FAIL" and exits 1 (2 for a usage error).
//
// Build (no network needed; uses Debian's golang-golang-x-mod-dev):
//
//	cd verifiers/tlog-go && ./build.sh [OUTPUT]
//
// which runs, in effect:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o tlog-verify .
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tileHeight is fixed by c2sp.org/tlog-tiles.
const tileHeight = 8

const tileWidth = 1 << tileHeight

// maxFetch bounds any single file or response read.
const maxFetch = 64 << 20

// errNotFound marks a file or resource that does not exist.
var errNotFound = errors.New("not found")

// source reads files of the log from a directory or over HTTP.
type source interface {
	// get reads BASE/path.
	get(path string) ([]byte, error)
	// proof reads the inclusion ("inclusion", I, N) or consistency
	// ("consistency", M, N) proof.
	proof(kind string, a, b int64) ([]byte, error)
	describe() string
}

type dirSource struct{ dir string }

func (d dirSource) get(path string) ([]byte, error) {
	full := filepath.Join(d.dir, filepath.FromSlash(path))
	f, err := os.Open(full)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", full, errNotFound)
		}
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFetch+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", full, err)
	}
	if len(data) > maxFetch {
		return nil, fmt.Errorf("%s: larger than %d bytes", full, maxFetch)
	}
	return data, nil
}

func (d dirSource) proof(kind string, a, b int64) ([]byte, error) {
	return d.get(fmt.Sprintf("proof/%s/%d-%d.json", kind, a, b))
}

func (d dirSource) describe() string { return d.dir }

// proofFiles lists the proof files present in the directory form.
func (d dirSource) proofFiles(kind string) ([][2]int64, error) {
	names, err := filepath.Glob(filepath.Join(d.dir, "proof", kind, "*.json"))
	if err != nil {
		return nil, err
	}
	var out [][2]int64
	for _, name := range names {
		base := strings.TrimSuffix(filepath.Base(name), ".json")
		a, b, ok := strings.Cut(base, "-")
		x, err1 := parseDecimal(a)
		y, err2 := parseDecimal(b)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: proof file name must be <a>-<b>.json", name)
		}
		out = append(out, [2]int64{x, y})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out, nil
}

type httpSource struct {
	base   string
	token  string
	client *http.Client
}

func (h httpSource) fetch(url string) ([]byte, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxFetch+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", url, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("GET %s: %w (404)", url, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, msg)
	}
	if len(data) > maxFetch {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", url, maxFetch)
	}
	return data, nil
}

func (h httpSource) get(path string) ([]byte, error) { return h.fetch(h.base + "/" + path) }

func (h httpSource) proof(kind string, a, b int64) ([]byte, error) {
	var q string
	switch kind {
	case "inclusion":
		q = fmt.Sprintf("index=%d&size=%d", a, b)
	case "consistency":
		q = fmt.Sprintf("from=%d&to=%d", a, b)
	default:
		return nil, fmt.Errorf("unknown proof kind %q", kind)
	}
	return h.fetch(h.base + "/proof/" + kind + "?" + q)
}

func (h httpSource) describe() string { return h.base }

// nPath writes a tile index as C2SP does: zero-padded 3-digit groups, all
// but the last prefixed with "x".
func nPath(n int64) string {
	var groups []string
	for {
		groups = append(groups, fmt.Sprintf("%03d", n%1000))
		n /= 1000
		if n == 0 {
			break
		}
	}
	var b strings.Builder
	for i := len(groups) - 1; i >= 0; i-- {
		b.WriteString("/")
		if i > 0 {
			b.WriteString("x")
		}
		b.WriteString(groups[i])
	}
	return b.String()
}

func widthSuffix(w int) string {
	if w < tileWidth {
		return fmt.Sprintf(".p/%d", w)
	}
	return ""
}

// hashTilePath maps a tlog hash tile to its C2SP path. Unlike the sumdb
// layout (tile/8/L/N), C2SP has no height segment.
func hashTilePath(t tlog.Tile) string {
	return fmt.Sprintf("tile/%d%s%s", t.L, nPath(t.N), widthSuffix(t.W))
}

// entriesPath is the C2SP path of entry bundle n holding w entries.
func entriesPath(n int64, w int) string {
	return "tile/entries" + nPath(n) + widthSuffix(w)
}

// tileReader is a tlog.TileReader over the C2SP paths of a source. Tile
// data is cached in memory for the run (TileHashReader re-reads the tiles
// that authenticate the root on every call).
type tileReader struct {
	src   source
	cache map[tlog.Tile][]byte
}

func (r *tileReader) Height() int { return tileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.H != tileHeight || t.L < 0 {
			return nil, fmt.Errorf("unexpected tile %+v requested", t)
		}
		if d, ok := r.cache[t]; ok {
			out[i] = d
			continue
		}
		path := hashTilePath(t)
		d, err := r.src.get(path)
		if err != nil {
			return nil, fmt.Errorf("reading tile %s: %w", path, err)
		}
		if len(d) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("tile %s: %d bytes, want %d (%d hashes)", path, len(d), t.W*tlog.HashSize, t.W)
		}
		r.cache[t] = d
		out[i] = d
	}
	return out, nil
}

// SaveTiles is a no-op: nothing is persisted.
func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

// checkpoint is a parsed c2sp.org/tlog-checkpoint body.
type checkpoint struct {
	origin     string
	size       int64
	root       tlog.Hash
	extensions []string
}

func parseDecimal(s string) (int64, error) {
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q is not a canonical decimal", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a canonical decimal", s)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// parseCheckpoint parses the note text: origin, decimal size, base64
// root hash, then optional extension lines.
func parseCheckpoint(text string) (checkpoint, error) {
	var cp checkpoint
	if !strings.HasSuffix(text, "\n") {
		return cp, errors.New("checkpoint text must end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return cp, fmt.Errorf("checkpoint has %d lines, want at least 3 (origin, size, root)", len(lines))
	}
	if lines[0] == "" {
		return cp, errors.New("checkpoint origin line is empty")
	}
	cp.origin = lines[0]
	size, err := parseDecimal(lines[1])
	if err != nil {
		return cp, fmt.Errorf("checkpoint size: %v", err)
	}
	cp.size = size
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize || base64.StdEncoding.EncodeToString(raw) != lines[2] {
		return cp, fmt.Errorf("checkpoint root %q is not the base64 of a 32-byte hash", lines[2])
	}
	copy(cp.root[:], raw)
	for _, e := range lines[3:] {
		if e == "" {
			return cp, errors.New("checkpoint has an empty extension line")
		}
		cp.extensions = append(cp.extensions, e)
	}
	return cp, nil
}

// openCheckpoint verifies the signed note with the key and parses it.
func openCheckpoint(what string, msg []byte, verifiers note.Verifiers) (checkpoint, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		return checkpoint{}, fmt.Errorf("%s: signature check failed: %v", what, err)
	}
	cp, err := parseCheckpoint(n.Text)
	if err != nil {
		return checkpoint{}, fmt.Errorf("%s: %v", what, err)
	}
	return cp, nil
}

// proofJSON is the body of both proof endpoints.
type proofJSON struct {
	Hashes []string `json:"hashes"`
	Index  *int64   `json:"index"`
	Size   *int64   `json:"size"`
	From   *int64   `json:"from"`
	To     *int64   `json:"to"`
}

func parseProof(kind string, a, b int64, data []byte) ([]tlog.Hash, error) {
	var p proofJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s proof %d-%d: bad JSON: %v", kind, a, b, err)
	}
	if p.Hashes == nil {
		return nil, fmt.Errorf("%s proof %d-%d: no \"hashes\" array", kind, a, b)
	}
	echo := func(name string, got *int64, want int64) error {
		if got != nil && *got != want {
			return fmt.Errorf("%s proof %d-%d: %q is %d, want %d", kind, a, b, name, *got, want)
		}
		return nil
	}
	var errs []error
	if kind == "inclusion" {
		errs = append(errs, echo("index", p.Index, a), echo("size", p.Size, b))
	} else {
		errs = append(errs, echo("from", p.From, a), echo("to", p.To, b))
	}
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	out := make([]tlog.Hash, len(p.Hashes))
	for i, s := range p.Hashes {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != tlog.HashSize {
			return nil, fmt.Errorf("%s proof %d-%d: hash %d is not the base64 of 32 bytes", kind, a, b, i)
		}
		copy(out[i][:], raw)
	}
	return out, nil
}

// pairList is a repeatable flag of "A" or "A:B".
type pairList []pairArg

type pairArg struct {
	a, b   int64
	hasB   bool
	source string
}

func (l *pairList) String() string { return fmt.Sprint(*l) }

func (l *pairList) Set(s string) error {
	for _, item := range strings.Split(s, ",") {
		x, y, hasB := strings.Cut(item, ":")
		a, err := parseDecimal(x)
		if err != nil {
			return err
		}
		var b int64
		if hasB {
			if b, err = parseDecimal(y); err != nil {
				return err
			}
		}
		*l = append(*l, pairArg{a: a, b: b, hasB: hasB, source: item})
	}
	return nil
}

// verifier holds the state of one run.
type verifier struct {
	src     source
	cp      checkpoint
	tiles   *tileReader
	hashes  tlog.HashReader
	bundles map[int64][][]byte
}

// rootAt computes the root of the tree of size n (n ≤ checkpoint size)
// from the authenticated tiles.
func (v *verifier) rootAt(n int64) (tlog.Hash, error) {
	if n == v.cp.size {
		return v.cp.root, nil
	}
	if n == 0 {
		// RFC 9162: the empty tree's root is SHA-256 of nothing (tlog
		// uses an all-zero hash instead).
		return sha256.Sum256(nil), nil
	}
	return tlog.TreeHash(n, v.hashes)
}

// bundle reads and parses entry bundle n of the current tree.
func (v *verifier) bundle(n int64) ([][]byte, error) {
	if b, ok := v.bundles[n]; ok {
		return b, nil
	}
	w := v.cp.size - n*tileWidth
	if w <= 0 {
		return nil, fmt.Errorf("entry bundle %d is beyond the tree", n)
	}
	if w > tileWidth {
		w = tileWidth
	}
	path := entriesPath(n, int(w))
	data, err := v.src.get(path)
	if err != nil {
		return nil, fmt.Errorf("reading entry bundle %s: %w", path, err)
	}
	var entries [][]byte
	for at := 0; at < len(data); {
		if at+2 > len(data) {
			return nil, fmt.Errorf("entry bundle %s: truncated length at byte %d", path, at)
		}
		l := int(binary.BigEndian.Uint16(data[at:]))
		if at+2+l > len(data) {
			return nil, fmt.Errorf("entry bundle %s: entry %d truncated at byte %d", path, len(entries), at)
		}
		entries = append(entries, data[at+2:at+2+l])
		at += 2 + l
	}
	if int64(len(entries)) != w {
		return nil, fmt.Errorf("entry bundle %s: %d entries, want %d", path, len(entries), w)
	}
	v.bundles = map[int64][][]byte{n: entries} // keep only the last one
	return entries, nil
}

// hashTiles lists the hash tiles of a tree of size n, as C2SP serves them:
// at each level the full tiles and at most one partial tile. (tlog.NewTiles
// in x/mod 0.7.0 also lists every narrower partial tile, which C2SP logs
// need not keep.)
func hashTiles(n int64) []tlog.Tile {
	var tiles []tlog.Tile
	for level := 0; n>>(tileHeight*level) > 0; level++ {
		m := n >> (tileHeight * level)
		for k := int64(0); k < m>>tileHeight; k++ {
			tiles = append(tiles, tlog.Tile{H: tileHeight, L: level, N: k, W: tileWidth})
		}
		if w := int(m & (tileWidth - 1)); w > 0 {
			tiles = append(tiles, tlog.Tile{H: tileHeight, L: level, N: m >> tileHeight, W: w})
		}
	}
	return tiles
}

// checkTiles authenticates every hash tile of the tree: each full tile
// must hash (tlog.HashFromTile, tlog.NodeHash) to its entry in its parent
// tile. The partial tiles are the ones tlog.TreeHash recomputed the root
// from, so the chain reaches the signed root.
//
// tlog.TileHashReader is meant to do this for the tiles it reads, but in
// x/mod 0.7.0 its loop "authenticate full tiles against their parents"
// starts at len(stx), the number of subtree hashes, rather than at the
// number of distinct tiles holding them; when several of those hashes share
// a tile (most trees), the first requested child tiles are returned
// unchecked. So every tile is checked here, independently of it.
func (v *verifier) checkTiles() (int, error) {
	tiles := hashTiles(v.cp.size)
	byPos := make(map[[2]int64]tlog.Tile, len(tiles))
	for _, t := range tiles {
		byPos[[2]int64{int64(t.L), t.N}] = t
	}
	read := func(t tlog.Tile) ([]byte, error) {
		d, err := v.tiles.ReadTiles([]tlog.Tile{t})
		if err != nil {
			return nil, err
		}
		return d[0], nil
	}
	for _, t := range tiles {
		data, err := read(t)
		if err != nil {
			return 0, err
		}
		if t.W < tileWidth {
			continue
		}
		parent, ok := byPos[[2]int64{int64(t.L + 1), t.N >> tileHeight}]
		if !ok {
			return 0, fmt.Errorf("tile %s has no parent tile (bad math)", hashTilePath(t))
		}
		pdata, err := read(parent)
		if err != nil {
			return 0, err
		}
		level := tileHeight*t.L + tileHeight - 1
		left, err1 := tlog.HashFromTile(t, data, tlog.StoredHashIndex(level, 2*t.N))
		right, err2 := tlog.HashFromTile(t, data, tlog.StoredHashIndex(level, 2*t.N+1))
		want, err3 := tlog.HashFromTile(parent, pdata, tlog.StoredHashIndex(level+1, t.N))
		for _, err := range []error{err1, err2, err3} {
			if err != nil {
				return 0, fmt.Errorf("tile %s: %v", hashTilePath(t), err)
			}
		}
		if tlog.NodeHash(left, right) != want {
			return 0, fmt.Errorf("tile %s does not match its hash in parent tile %s", hashTilePath(t), hashTilePath(parent))
		}
	}
	return len(tiles), nil
}

// checkEntries checks every entry against the stored leaf hashes.
func (v *verifier) checkEntries() error {
	for n := int64(0); n*tileWidth < v.cp.size; n++ {
		entries, err := v.bundle(n)
		if err != nil {
			return err
		}
		indexes := make([]int64, len(entries))
		for k := range entries {
			indexes[k] = tlog.StoredHashIndex(0, n*tileWidth+int64(k))
		}
		stored, err := v.hashes.ReadHashes(indexes)
		if err != nil {
			return fmt.Errorf("reading leaf hashes of records %d..%d: %v", n*tileWidth, n*tileWidth+int64(len(entries))-1, err)
		}
		if len(stored) != len(entries) {
			return fmt.Errorf("tile reader returned %d hashes, want %d", len(stored), len(entries))
		}
		for k, e := range entries {
			if tlog.RecordHash(e) != stored[k] {
				return fmt.Errorf("record %d (in %s): entry hashes to %v, tiles hold %v",
					n*tileWidth+int64(k), entriesPath(n, len(entries)), tlog.RecordHash(e), stored[k])
			}
		}
	}
	return nil
}

// leafHash is record i's hash: from its entry when entries are read, else
// the stored hash (authenticated by the tiles).
func (v *verifier) leafHash(i int64, entries bool) (tlog.Hash, error) {
	if entries {
		b, err := v.bundle(i / tileWidth)
		if err != nil {
			return tlog.Hash{}, err
		}
		return tlog.RecordHash(b[i%tileWidth]), nil
	}
	h, err := v.hashes.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
	if err != nil {
		return tlog.Hash{}, err
	}
	return h[0], nil
}

func (v *verifier) checkInclusion(i, n int64, entries bool) error {
	if n > v.cp.size || i >= n {
		return fmt.Errorf("inclusion proof %d-%d: need index < size ≤ %d (the checkpoint size)", i, n, v.cp.size)
	}
	data, err := v.src.proof("inclusion", i, n)
	if err != nil {
		return fmt.Errorf("inclusion proof %d-%d: %w", i, n, err)
	}
	p, err := parseProof("inclusion", i, n, data)
	if err != nil {
		return err
	}
	root, err := v.rootAt(n)
	if err != nil {
		return fmt.Errorf("inclusion proof %d-%d: root of size %d: %v", i, n, n, err)
	}
	leaf, err := v.leafHash(i, entries)
	if err != nil {
		return fmt.Errorf("inclusion proof %d-%d: %v", i, n, err)
	}
	if err := tlog.CheckRecord(tlog.RecordProof(p), n, root, i, leaf); err != nil {
		return fmt.Errorf("inclusion proof of record %d in tree %d rejected: %v", i, n, err)
	}
	return nil
}

func (v *verifier) checkConsistency(m, n int64, oldRoot *tlog.Hash) error {
	if m > n || n > v.cp.size {
		return fmt.Errorf("consistency proof %d-%d: need from ≤ to ≤ %d (the checkpoint size)", m, n, v.cp.size)
	}
	data, err := v.src.proof("consistency", m, n)
	if err != nil {
		return fmt.Errorf("consistency proof %d-%d: %w", m, n, err)
	}
	p, err := parseProof("consistency", m, n, data)
	if err != nil {
		return err
	}
	if m == 0 {
		// Every tree extends the empty tree; RFC 9162 proves it with no
		// hashes (tlog.CheckTree does not take size 0).
		if len(p) != 0 {
			return fmt.Errorf("consistency proof 0-%d: want no hashes, got %d", n, len(p))
		}
		return nil
	}
	oldH, err := v.rootAt(m)
	if err != nil {
		return fmt.Errorf("consistency proof %d-%d: root of size %d: %v", m, n, m, err)
	}
	if oldRoot != nil && *oldRoot != oldH {
		return fmt.Errorf("root of size %d recomputed from the tiles is %v, the earlier checkpoint says %v", m, oldH, *oldRoot)
	}
	newH, err := v.rootAt(n)
	if err != nil {
		return fmt.Errorf("consistency proof %d-%d: root of size %d: %v", m, n, n, err)
	}
	if err := tlog.CheckTree(tlog.TreeProof(p), n, newH, m, oldH); err != nil {
		return fmt.Errorf("consistency proof from %d to %d rejected: %v", m, n, err)
	}
	return nil
}

// evidenceBundle is the part of a Mamori evidence bundle an RFC 9162
// verifier needs (encoding/json decodes the base64 leaf into bytes).
type evidenceBundle struct {
	Format      string `json:"format"`
	Origin      string `json:"origin"`
	VerifierKey string `json:"verifier_key"`
	Checkpoint  string `json:"checkpoint"`
	Records     []struct {
		Index          int64    `json:"index"`
		Leaf           []byte   `json:"leaf"`
		InclusionProof []string `json:"inclusion_proof"`
	} `json:"records"`
}

// checkBundle checks an evidence bundle file and exits.
func checkBundle(path, vkey, origin string) {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		os.Exit(2)
	}
	var b evidenceBundle
	if err := json.Unmarshal(data, &b); err != nil {
		fail("bundle %s: bad JSON: %v", path, err)
	}
	if b.Format != "mamori-evidence-bundle/1" {
		fail("bundle %s: format %q, want mamori-evidence-bundle/1", path, b.Format)
	}
	keyNote := ""
	if strings.TrimSpace(vkey) == "" {
		vkey = b.VerifierKey
		keyNote = " (key from the bundle: shows it is intact, not who signed it)"
	}
	nv, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		fail("verifier key %q: %v", vkey, err)
	}
	cp, err := openCheckpoint("checkpoint", []byte(b.Checkpoint), note.VerifierList(nv))
	if err != nil {
		fail("%v", err)
	}
	if cp.origin != b.Origin || (origin != "" && cp.origin != origin) {
		fail("checkpoint origin is %q; the bundle names %q", cp.origin, b.Origin)
	}
	if len(b.Records) == 0 {
		fail("bundle %s has no records", path)
	}
	for i, r := range b.Records {
		proof := make(tlog.RecordProof, len(r.InclusionProof))
		for j, h := range r.InclusionProof {
			if proof[j], err = tlog.ParseHash(h); err != nil {
				fail("record %d (entry %d of the bundle): proof hash %d: %v", r.Index, i, j, err)
			}
		}
		if err := tlog.CheckRecord(proof, cp.size, cp.root, r.Index, tlog.RecordHash(r.Leaf)); err != nil {
			fail("record %d (entry %d of the bundle): %v", r.Index, i, err)
		}
	}
	fmt.Printf("OK bundle: %d records included in %s at size %d%s\n", len(b.Records), cp.origin, cp.size, keyNote)
	os.Exit(0)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	var (
		keyFlag     = flag.String("key", "", "verifier key `<name>+<hex id>+<base64>` (default: read BASE/key)")
		originFlag  = flag.String("origin", "", "require this checkpoint origin")
		tokenFlag   = flag.String("token", "", "HTTP bearer token")
		prevFlag    = flag.String("prev", "", "earlier signed checkpoint `FILE` to check consistency from")
		entriesFlag = flag.Bool("entries", true, "read and check every entry bundle")
		timeoutFlag = flag.Duration("timeout", 30*time.Second, "HTTP timeout per request")
		bundleFlag  = flag.String("bundle", "", "check the Mamori evidence bundle `FILE` instead of a log (no BASE)")
		inclusion   pairList
		consistency pairList
	)
	flag.Var(&inclusion, "inclusion", "check the inclusion proof `I[:N]` (N defaults to the checkpoint size); repeatable")
	flag.Var(&consistency, "consistency", "check the consistency proof `M[:N]` (N defaults to the checkpoint size); repeatable")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: tlog-verify [flags] BASE | tlog-verify [-key VKEY] -bundle FILE\n\nBASE is a directory or an http(s) URL laid out as SPEC §4.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *bundleFlag != "" && flag.NArg() == 0 {
		checkBundle(*bundleFlag, *keyFlag, *originFlag)
	}
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	base := flag.Arg(0)

	var src source
	var dir *dirSource
	if strings.HasPrefix(base, "http://") || strings.HasPrefix(base, "https://") {
		src = httpSource{base: strings.TrimRight(base, "/"), token: *tokenFlag, client: &http.Client{Timeout: *timeoutFlag}}
	} else {
		st, err := os.Stat(base)
		if err != nil || !st.IsDir() {
			fmt.Fprintf(os.Stderr, "FAIL: BASE %q is neither an http(s) URL nor a directory\n", base)
			os.Exit(2)
		}
		d := dirSource{dir: base}
		dir = &d
		src = d
	}

	// 1. The key and the checkpoint.
	vkey := strings.TrimSpace(*keyFlag)
	keyNote := ""
	if vkey == "" {
		data, err := src.get("key")
		if err != nil {
			fail("no -key given and reading BASE/key failed: %v", err)
		}
		vkey = strings.TrimSpace(string(data))
		keyNote = " (key read from BASE: trusts its source)"
	}
	nv, err := note.NewVerifier(vkey)
	if err != nil {
		fail("verifier key %q: %v", vkey, err)
	}
	verifiers := note.VerifierList(nv)
	msg, err := src.get("checkpoint")
	if err != nil {
		fail("reading checkpoint: %v", err)
	}
	cp, err := openCheckpoint("checkpoint", msg, verifiers)
	if err != nil {
		fail("%v", err)
	}
	if *originFlag != "" && cp.origin != *originFlag {
		fail("checkpoint origin is %q, want %q", cp.origin, *originFlag)
	}

	tr := &tileReader{src: src, cache: map[tlog.Tile][]byte{}}
	v := &verifier{
		src:    src,
		cp:     cp,
		tiles:  tr,
		hashes: tlog.TileHashReader(tlog.Tree{N: cp.size, Hash: cp.root}, tr),
	}

	// 2. The root from the tiles.
	if cp.size == 0 {
		if cp.root != sha256.Sum256(nil) {
			fail("checkpoint of size 0 has root %v, want SHA-256 of the empty string", cp.root)
		}
	} else {
		root, err := tlog.TreeHash(cp.size, v.hashes)
		if err != nil {
			fail("recomputing the root of size %d from the tiles: %v", cp.size, err)
		}
		if root != cp.root {
			fail("root recomputed from the tiles is %v, checkpoint says %v", root, cp.root)
		}
	}

	// 2b. Every hash tile, chained up to the tiles the root came from.
	tileCount, err := v.checkTiles()
	if err != nil {
		fail("%v", err)
	}

	// 3. Every entry.
	if *entriesFlag {
		if err := v.checkEntries(); err != nil {
			fail("%v", err)
		}
	}

	// 4. Proofs.
	defaultTo := func(p pairArg) int64 {
		if p.hasB {
			return p.b
		}
		return cp.size
	}
	var incl, cons [][2]int64
	for _, p := range inclusion {
		incl = append(incl, [2]int64{p.a, defaultTo(p)})
	}
	for _, p := range consistency {
		cons = append(cons, [2]int64{p.a, defaultTo(p)})
	}
	if dir != nil && len(inclusion) == 0 && len(consistency) == 0 {
		if incl, err = dir.proofFiles("inclusion"); err != nil {
			fail("%v", err)
		}
		if cons, err = dir.proofFiles("consistency"); err != nil {
			fail("%v", err)
		}
	}
	for _, p := range incl {
		if err := v.checkInclusion(p[0], p[1], *entriesFlag); err != nil {
			fail("%v", err)
		}
	}
	for _, p := range cons {
		if err := v.checkConsistency(p[0], p[1], nil); err != nil {
			fail("%v", err)
		}
	}

	// 5. The earlier checkpoint.
	prevNote := ""
	if *prevFlag != "" {
		data, err := os.ReadFile(*prevFlag)
		if err != nil {
			fail("reading -prev: %v", err)
		}
		prev, err := openCheckpoint("earlier checkpoint "+*prevFlag, data, verifiers)
		if err != nil {
			fail("%v", err)
		}
		if prev.origin != cp.origin {
			fail("earlier checkpoint is for origin %q, the log is %q", prev.origin, cp.origin)
		}
		if prev.size > cp.size {
			fail("the log shrank: earlier checkpoint has size %d, current %d", prev.size, cp.size)
		}
		switch {
		case prev.size == cp.size:
			if prev.root != cp.root {
				fail("two checkpoints of size %d with different roots: %v and %v", cp.size, prev.root, cp.root)
			}
		case prev.size == 0:
			if prev.root != sha256.Sum256(nil) {
				fail("earlier checkpoint of size 0 has root %v, want SHA-256 of the empty string", prev.root)
			}
		default:
			if err := v.checkConsistency(prev.size, cp.size, &prev.root); err != nil {
				fail("not consistent with the earlier checkpoint: %v", err)
			}
		}
		prevNote = fmt.Sprintf(", extends earlier checkpoint of size %d", prev.size)
	}

	entriesNote := fmt.Sprintf("%d entries", cp.size)
	if !*entriesFlag {
		entriesNote = "entries not read"
	}
	fmt.Printf("OK %s: origin %q, size %d, root %v; %d hash tiles, %s, %d inclusion and %d consistency proofs verified with golang.org/x/mod/sumdb/tlog%s%s\n",
		src.describe(), cp.origin, cp.size, cp.root, tileCount, entriesNote, len(incl), len(cons), prevNote, keyNote)
}
