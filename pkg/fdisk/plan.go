package fdisk

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
)

const mib = 1 << 20

// MaxParts is how many partitions a GPT holds (its default entry array).
const MaxParts = 128

// gptTail is the sectors the backup GPT takes at the end of the disk: 32
// sectors of entries (128 × 128 bytes at 512 bytes a sector) and a header.
const gptTail = 33

// Extent is a planned partition: its number (from 1), type, and sectors
// (End inclusive) of Sector bytes.
type Extent struct {
	Index      int
	Type       Type
	Start, End uint64
	Sector     int64
}

// Bytes is the extent's size.
func (e Extent) Bytes() int64 { return int64(e.End-e.Start+1) * e.Sector }

// Plan lays the section's partitions out on a disk of size bytes with
// sector-byte sectors (see the package doc), or refuses, wrapping
// ErrNoFit, when they do not fit.
func (d Disk) Plan(size, sector int64) ([]Extent, error) {
	if sector <= 0 || mib%sector != 0 {
		return nil, fmt.Errorf("sector size %d: want a power of two up to 1 MiB", sector)
	}
	if len(d.Parts) == 0 {
		return nil, fmt.Errorf("disk %s: no partitions", d.Name)
	}
	if len(d.Parts) > MaxParts {
		return nil, fmt.Errorf("%w: %d partitions, a GPT holds %d", ErrNoFit, len(d.Parts), MaxParts)
	}
	tail := int64(gptTail) * 512
	if sector > 512 {
		tail = (MaxParts*128/sector + 1) * sector
	}
	limit := (size - tail) / sector * sector // first byte past the usable area
	var out []Extent
	at := int64(mib)
	for i, p := range d.Parts {
		at = (at + mib - 1) / mib * mib
		var n int64
		switch {
		case p.Size.Rest:
			n = (limit - at) / sector * sector
			if n < mib {
				return nil, fmt.Errorf("%w: partition %d (rest) would get %s, less than 1M, of a %s disk", ErrNoFit, i+1, FormatBytes(max(n, 0)), FormatBytes(size))
			}
		case p.Size.Percent > 0:
			n = size / 100 * int64(p.Size.Percent) / mib * mib
			if n < mib {
				return nil, fmt.Errorf("%w: partition %d (%d%%) is less than 1M of a %s disk", ErrNoFit, i+1, p.Size.Percent, FormatBytes(size))
			}
		default:
			n = (p.Size.Bytes + sector - 1) / sector * sector
		}
		if at+n > limit {
			return nil, fmt.Errorf("%w: partition %d (%s %s) ends at byte %d, past the last usable byte %d of a %s disk",
				ErrNoFit, i+1, p.Type, p.Size, at+n, limit, FormatBytes(size))
		}
		out = append(out, Extent{Index: i + 1, Type: p.Type, Start: uint64(at / sector), End: uint64((at+n)/sector - 1), Sector: sector})
		at += n
	}
	return out, nil
}

// Apply writes the section's partition table to the disk (a block
// device, or a regular file standing for one) and has the kernel re-read
// it. It plans first against the disk's own size and writes nothing when
// the layout does not fit. It returns what it wrote.
func Apply(path string, d Disk) ([]Extent, error) {
	dk, err := openDisk(path, true)
	if err != nil {
		return nil, err
	}
	defer dk.Close()
	ext, err := d.Plan(dk.size, dk.logical)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t := &gpt.Table{
		LogicalSectorSize:  int(dk.logical),
		PhysicalSectorSize: int(dk.physical),
		ProtectiveMBR:      true,
	}
	for _, e := range ext {
		typ := gpt.LinuxFilesystem
		if e.Type == Swap {
			typ = gpt.LinuxSwap
		}
		t.Partitions = append(t.Partitions, &gpt.Partition{
			Index: e.Index, Start: e.Start, End: e.End, Size: uint64(e.Bytes()),
			Type: typ, Name: "beo-" + string(e.Type),
		})
	}
	var old *gpt.Table
	if dk.dev {
		old, _ = dk.table() // what the kernel may still hold; none is fine
	}
	if err := dk.write(t, old); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ext, nil
}

// Read returns the partitions of the GPT on path (a device or an image).
func Read(path string) ([]Extent, error) {
	dk, err := openDisk(path, false)
	if err != nil {
		return nil, err
	}
	defer dk.Close()
	t, err := dk.table()
	if err != nil {
		return nil, fmt.Errorf("%s: not a GPT: %w", path, err)
	}
	var out []Extent
	for _, p := range t.Partitions {
		if p.Type == gpt.Unused {
			continue
		}
		typ := Linux
		if p.Type == gpt.LinuxSwap {
			typ = Swap
		}
		out = append(out, Extent{Index: p.Index, Type: typ, Start: p.Start, End: p.End, Sector: dk.logical})
	}
	return out, nil
}

// List returns the disks under sysBlock (/sys/block): every block device
// but RAM disks, loop, zram, CD/DVD (sr) and floppy (fd) drives, device
// mapper and md, and devices of size 0 (an empty drive).
func List(sysBlock string) ([]Info, error) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range ents {
		n := e.Name()
		if skipDisk(n) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sysBlock, n, "size"))
		if err != nil {
			continue
		}
		sectors, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || sectors <= 0 {
			continue
		}
		out = append(out, Info{Name: n, Size: sectors * 512}) // /sys/block/*/size counts 512-byte units
	}
	return out, nil
}

func skipDisk(n string) bool {
	for _, p := range []string{"ram", "loop", "zram", "sr", "fd", "dm-", "md", "nbd"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}
