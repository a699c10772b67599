-- heapwatch database schema: the only contract between preload/ (writer) and analyzer/ (reader).
-- Version: PRAGMA user_version = HW_SCHEMA_VERSION (schema/schema.h). Every change bumps it.
-- The writer runs this whole file once when it creates a database. The analyzer refuses a
-- database whose meta.format is not 'heapwatch' or whose user_version it does not know.
--
-- Conventions: addresses and PCs are stored as INTEGER (two's complement of the 64-bit value);
-- sizes are bytes; times are nanoseconds (CLOCK_REALTIME for wall times, CLOCK_MONOTONIC
-- differences for durations). Tables whose name starts with cache_ belong to the analyzer and
-- may be dropped at any time.

CREATE TABLE meta(
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);  -- ('format','heapwatch'), ('schema_version','8'), ('heapwatch_version', ...)

CREATE TABLE process(
  pid           INTEGER NOT NULL,
  ppid          INTEGER NOT NULL,
  exe           TEXT NOT NULL,     -- readlink(/proc/self/exe)
  cmdline       TEXT NOT NULL,     -- argv joined by single spaces
  start_time_ns INTEGER NOT NULL,  -- when the shim initialised (CLOCK_REALTIME)
  sample_rate   INTEGER NOT NULL,  -- mean bytes between samples; 1 = every allocation
  settings      TEXT NOT NULL,     -- the effective HEAPWATCH_* settings, 'NAME=value' lines
  forked_from   INTEGER            -- parent's pid when this process is a fork child of a traced one
);

-- Modules (executable, shared libraries, vdso), loaded now or unloaded since. A runtime PC
-- belongs to the module whose [text_start, text_end) holds it; its link-time address is
-- pc - load_bias.
CREATE TABLE module(
  id         INTEGER PRIMARY KEY,
  path       TEXT NOT NULL,        -- absolute path; '[vdso]' for the vdso
  build_id   TEXT,                 -- hex NT_GNU_BUILD_ID, NULL if none
  load_bias  INTEGER NOT NULL,     -- dlpi_addr
  text_start INTEGER NOT NULL,     -- lowest executable PT_LOAD, runtime address
  text_end   INTEGER NOT NULL,     -- end of highest executable PT_LOAD, runtime address
  first_snapshot INTEGER,          -- first snapshot written after it was loaded (NULL: at start)
  load_seq   INTEGER NOT NULL,     -- the shim's number for this load (1, 2, ... a library loaded
                                   -- again after a dlclose is a new row)
  unloaded_before INTEGER,         -- the first snapshot taken after it was unloaded (dlclose);
                                   -- NULL while it is loaded. Its frames still resolve: a PC
                                   -- in a range two rows share belongs to the newest one
  -- Its thread-local storage (NULL: none), to name __thread variables (schema 4):
  tls_modid  INTEGER,              -- the loader's TLS module id: a thread's block of it is
                                   -- dtv[tls_modid] (the 'dtv' root's word 2 * tls_modid + 2)
  tls_size   INTEGER,              -- PT_TLS p_memsz
  tls_offset INTEGER               -- static TLS: its block is at thread.tp - tls_offset in every
                                   -- thread; NULL for a dlopen'd module's dynamic TLS, whose
                                   -- blocks are heap blocks reached from the dtv
);
CREATE UNIQUE INDEX module_by_load ON module(load_seq);

CREATE TABLE module_segment(
  module_id INTEGER NOT NULL REFERENCES module(id),
  start     INTEGER NOT NULL,      -- runtime address
  end       INTEGER NOT NULL,
  flags     INTEGER NOT NULL       -- PF_R=4 | PF_W=2 | PF_X=1
);

-- Allocation stacks as a prefix tree of frames: a node is one frame (a return address: the
-- shim's own frames are already removed, so symbolize pc - 1) and its caller's node (parent 0 =
-- outermost frame). A stack id is the id of its innermost frame; its frames are that node and
-- its parents up to the root. Id 0 is never stored: it means "not sampled". A parent's id is
-- always below its child's.
-- The shim writes the nodes packed, in stack_chunk (schema 7): a program with deep and varied
-- stacks interns millions of nodes, which as rows cost SQLite about half a microsecond and
-- twenty bytes each. The stack table keeps the row form, which databases before schema 7
-- hold and which tools may still write; a reader takes the nodes of both.
CREATE TABLE stack(
  id     INTEGER PRIMARY KEY,
  parent INTEGER NOT NULL,
  pc     INTEGER NOT NULL
);

-- Nodes first, first + 1, ... first + count - 1 (at most 65,536 a row), packed as
-- schema/chunk.h documents (stack_chunk): per node, id - parent and the zigzag delta of its pc
-- from its parent's, as varints. Rows are written in order and never overlap; each snapshot
-- adds the nodes interned since the one before.
CREATE TABLE stack_chunk(
  first  INTEGER PRIMARY KEY,
  count  INTEGER NOT NULL,
  data   BLOB NOT NULL
);

CREATE TABLE snapshot(
  id            INTEGER PRIMARY KEY,   -- 1, 2, 3 ... in the order taken
  time_ns       INTEGER NOT NULL,
  label         TEXT,
  trigger       TEXT NOT NULL,         -- 'signal' | 'api' | 'interval' | 'exit'
  mode          TEXT NOT NULL,         -- how the heap was walked: 'fork' (a child of the stopped
                                       -- process marked and wrote), 'inplace' (marked while stopped,
                                       -- written after resuming) or 'counters' (no heap walk:
                                       -- HEAPWATCH_OBJECTS=0; object, root, edge rows absent)
  threads       INTEGER NOT NULL,      -- threads of the application at that moment (the shim's not counted)
  threads_unstopped INTEGER NOT NULL,  -- threads that did not stop in time (their stacks were scanned
                                       -- whole while they ran; see the thread table)
  live_objects  INTEGER NOT NULL,      -- exact, from the live-object table
  live_bytes    INTEGER NOT NULL,
  -- Reachability totals (NULL when mode = 'counters'); reachable + indirect + leaked = live.
  reachable_objects INTEGER, reachable_bytes INTEGER,
  indirect_objects  INTEGER, indirect_bytes  INTEGER,   -- unreachable, but pointed to by another unreachable block
  leaked_objects    INTEGER, leaked_bytes    INTEGER,   -- unreachable and not indirect: the direct leaks
  scanned_bytes INTEGER,               -- bytes of roots and objects scanned for pointers (NULL
                                       -- exactly when mode = 'counters')
  pause_ns      INTEGER NOT NULL,      -- time the application was held (signal sent to resumed)
  walk_ns       INTEGER NOT NULL,      -- counters, roots and mark (in the child for mode 'fork')
  write_ns      INTEGER NOT NULL       -- writing the rows, before the commit
);

-- Snapshots that were taken but could not be written (a full disk, an I/O error), recorded
-- with the first snapshot written after them: `lost` of them, the first and last taken at
-- first_time_ns and last_time_ns, between snapshot after_snapshot (0: before the first one)
-- and the next.
CREATE TABLE gap(
  after_snapshot INTEGER NOT NULL,
  lost           INTEGER NOT NULL,
  first_time_ns  INTEGER NOT NULL,
  last_time_ns   INTEGER NOT NULL,
  reason         TEXT NOT NULL       -- 'disk full', 'I/O error', 'database error', ...
);

-- Roots of a snapshot's mark: address ranges scanned for pointers into the heap.
--   kind 'global'    a writable PT_LOAD segment of a module (.data, .bss; RELRO excluded)
--   kind 'tls'       a thread's static TLS block and thread descriptor
--   kind 'dtv'       a thread's dynamic thread vector (points at dlopen'd modules' TLS blocks)
--   kind 'stack'     a thread's stack from its stack pointer (minus the 128-byte red zone) to its top
--   kind 'registers' a stopped thread's saved registers (the kernel's signal frame: general,
--                    SSE/AVX state)
--   kind 'altstack'  a thread's sigaltstack buffer
--   kind 'region'    a range registered with heapwatch_register_root()
--   kind 'exited_thread' the descriptor (struct pthread) of a joinable thread that has exited
--                    but is not joined yet: it holds the thread's return value
--   kind 'thread_start' the shim's slots holding the start routine and argument of threads
--                    being created (pthread_create has returned, the thread has not run yet)
CREATE TABLE root(
  snapshot_id INTEGER NOT NULL,
  id          INTEGER NOT NULL,        -- 1, 2, ... within the snapshot
  kind        TEXT NOT NULL,
  module_id   INTEGER,                 -- for 'global': the module
  tid         INTEGER,                 -- for per-thread kinds: the thread
  start       INTEGER NOT NULL,
  end         INTEGER NOT NULL,
  PRIMARY KEY(snapshot_id, id)
) WITHOUT ROWID;

-- Threads of the application at a snapshot. state: 'stopped' (held by the suspend signal),
-- 'caller' (the thread that asked for the snapshot, scanned from where it asked), 'unstopped'
-- (did not answer in time: blocked the signal with a raw system call, or stuck; its whole
-- stack was scanned while it ran).
CREATE TABLE thread(
  snapshot_id INTEGER NOT NULL,
  tid         INTEGER NOT NULL,
  state       TEXT NOT NULL,
  sp          INTEGER,                 -- stack pointer where it stopped
  pc          INTEGER,                 -- program counter where it stopped
  stack_start INTEGER,                 -- its stack mapping, when known
  stack_end   INTEGER,
  tp          INTEGER,                 -- its thread pointer (%fs base; schema 4), NULL if unknown
  PRIMARY KEY(snapshot_id, tid)
) WITHOUT ROWID;

-- Each stopped thread's unwound frames, innermost first (depth 0 = where it stopped): the
-- return address (pc) and canonical frame address (cfa: DWARF's CFA, the caller's stack
-- pointer before its call, so the frame's locals lie between the previous frame's cfa and
-- this one; DW_OP_fbreg offsets count from it at -O0), so that stack slots can be named as
-- the locals of the function at pc. The last frame's cfa is 0 when it could not be found.
CREATE TABLE frame(
  snapshot_id INTEGER NOT NULL,
  tid         INTEGER NOT NULL,
  depth       INTEGER NOT NULL,
  pc          INTEGER NOT NULL,
  cfa         INTEGER NOT NULL,
  PRIMARY KEY(snapshot_id, tid, depth)
) WITHOUT ROWID;

-- Go-style cumulative per-stack counters at the moment of a snapshot, already unbiased for
-- sampling (each sampled allocation of size s at rate R counts 1/(1-exp(-s/R)) objects and
-- s/(1-exp(-s/R)) bytes; exact when R = 1). inuse = alloc - free. *_samples are raw counts.
-- The shim writes these counters packed, in stack_count_chunk (schema 8): a program with
-- millions of stacks wrote as many rows here, half a microsecond each. This table keeps the
-- row form, which databases before schema 8 hold and which tools may still write; a reader
-- takes the rows of both.
CREATE TABLE snapshot_stack(
  snapshot_id   INTEGER NOT NULL REFERENCES snapshot(id),
  stack_id      INTEGER NOT NULL REFERENCES stack(id),
  alloc_objects INTEGER NOT NULL,
  alloc_bytes   INTEGER NOT NULL,
  free_objects  INTEGER NOT NULL,
  free_bytes    INTEGER NOT NULL,
  alloc_samples INTEGER NOT NULL,
  free_samples  INTEGER NOT NULL,
  PRIMARY KEY(snapshot_id, stack_id)
) WITHOUT ROWID;

-- A snapshot's per-stack counters (the snapshot_stack columns), packed (schema 8): rows
-- first, first + 1, ... first + count - 1 of the snapshot's list (at most 65,536 a chunk).
-- data is a sequence of LEB128 varints, per stack (schema/chunk.h, stack_count_chunk):
--   zigzag(stack_id - the previous row's stack_id; the first row of a chunk: from 0)
--   alloc_objects, alloc_bytes, free_objects, free_bytes, alloc_samples, free_samples
-- Rows are in the order the shim interned the stacks, not by id; no stack appears twice in a
-- snapshot. Only stacks with at least one sampled allocation are listed.
CREATE TABLE stack_count_chunk(
  snapshot_id INTEGER NOT NULL,
  first       INTEGER NOT NULL,      -- number of the chunk's first row
  count       INTEGER NOT NULL,
  data        BLOB NOT NULL,
  PRIMARY KEY(snapshot_id, first)
);

-- Every live heap block at the moment of a walked snapshot, in address order, packed: a heap
-- of millions of blocks is written in a fraction of a second this way, where one row per block
-- would take seconds (a million object rows and two million edge rows took 2.9 s in one
-- transaction). Block number k of a snapshot is the k-th in address order (0-based);
-- object_chunk rows hold consecutive runs of them. data is a sequence of unsigned LEB128
-- varints, per block:
--   address - previous block's address (the first block of a chunk: its address)
--   size, stack_id (0 = not sampled), seq, tid, class | flags << 2 | has_vptr << 6
--   (class and flags as in the object table below; flags fill bits 2..5)
--   vptr, only when has_vptr (schema 5): the block's first word, a candidate C++ vtable
--     pointer, as a zigzag delta ((d << 1) ^ (d >> 63) of the 64-bit difference) from the
--     previous vptr of the chunk (0 at its start). The walk stores a block's first word when
--     the block has 8 bytes or more and the word is 8-aligned and points into a loaded
--     module's segment that is not executable (where .data.rel.ro and .rodata, so the
--     vtables, are; so are .data and .bss: a pointer to a global is a false candidate, which
--     the analyzer drops when no _ZTV symbol holds it). Schemas 2..4 never set has_vptr.
-- Both chunk tables keep their rowids (unlike the small tables here): a WITHOUT ROWID table
-- stores rows in its key's b-tree, and inserting into it reads back whole neighbouring rows,
-- megabytes each here, to compare keys.
CREATE TABLE object_chunk(
  snapshot_id INTEGER NOT NULL,
  first       INTEGER NOT NULL,      -- number of the chunk's first block
  count       INTEGER NOT NULL,
  data        BLOB NOT NULL,
  PRIMARY KEY(snapshot_id, first)
);

-- The blocks a report needs one by one, as rows: every block that is not plainly reachable
-- (class 1 or 2), or carries a flag (reached only through interior pointers, or ignored).
-- Plainly reachable blocks are in object_chunk only.
CREATE TABLE object(
  snapshot_id INTEGER NOT NULL,
  address     INTEGER NOT NULL,
  size        INTEGER NOT NULL,
  stack_id    INTEGER NOT NULL,      -- 0 = allocation not sampled
  seq         INTEGER NOT NULL,      -- allocation sequence number (process-wide, 32 bits)
  tid         INTEGER NOT NULL,      -- kernel thread id of the allocating thread
  class       INTEGER NOT NULL,      -- 0 reachable, 1 indirect leak, 2 direct leak
  flags       INTEGER NOT NULL DEFAULT 0  -- 1: reachable, but every path from a root passes an
                                          --    interior pointer (memcheck's "possibly lost", which
                                          --    propagates along its paths); 2: heapwatch_ignore()d
                                          --    (such a block and what it reaches are class 0: it is
                                          --    a root)
);
CREATE INDEX object_by_snapshot ON object(snapshot_id, class, stack_id);

-- Pointers found by the mark, packed like object_chunk: one pointer-sized word each, from a
-- root or from a live block, to the block whose [address, address + size) holds the value
-- (interior pointers count; pointers out of unreachable blocks are included). data is a
-- sequence of LEB128 varints, per pointer:
--   source: 2 * root id + 1 for a root, 2 * block number for a block
--   offset / 8 * 2 + interior (offset: byte offset of the word within the root range or the
--     block, always aligned; interior: 1 when the pointer's value is not its target's start.
--     Schemas 2..4: offset / 8 alone, and no target offsets)
--   target block number
--   target offset, only when interior (schema 5): the value - the target block's address
-- Schema 9: each pointer is a delta from the one before it in its chunk, which schema/chunk.h
-- (hw_chunk_put_edge_at) spells out: the source counted from the previous source or from
-- the previous target, the word from the previous word of the same source, the target from
-- the previous target or from its source. The mark finds pointers in such runs, and a
-- pointer takes about 4 bytes instead of 9 (the bench's 3-million-block heap: 25 MB of edges
-- instead of 56).
-- Edges from roots come first, in root id order; then edges from blocks.
CREATE TABLE edge_chunk(
  snapshot_id INTEGER NOT NULL,
  chunk       INTEGER NOT NULL,      -- 0, 1, 2 ... in order
  count       INTEGER NOT NULL,
  data        BLOB NOT NULL,
  PRIMARY KEY(snapshot_id, chunk)
);

-- The event log (HEAPWATCH_EVENTS=1; schema 6): every sampled allocation and its free, in
-- the order each thread made them (every allocation in full mode). Each thread appends
-- records to its own buffer; the shim's writer drains every buffer at least once a second,
-- and whenever a few megabytes are waiting, into rows here (a kill -9 loses at most the
-- events of the last second). A drain of more than 4 MiB (a writer that fell behind) is cut in
-- time into several rows, each its own transaction. data is the segments and records that schema/chunk.h
-- documents (event_chunk), zlib-compressed (RFC 1950) or as they are (codec). The writer
-- compresses while events come slower than it compresses them, and stores them as they are
-- when they come faster, so that it keeps up (an event takes about 5 bytes either way).
-- Order across threads comes from the event clock. Every event taken up to a chunk's
-- end_ticks is in that chunk or an earlier one, except one taken before end_ticks but
-- published after the drain (its thread was preempted in between), which shows up with the
-- next drain; a chunk may also hold events taken after its end_ticks (a reader holds them
-- back until later chunks have come). A drain is never cut within 100 ms of its end.
CREATE TABLE event_chunk(
  id          INTEGER PRIMARY KEY,   -- 1, 2, ... in the order written
  start_ticks INTEGER NOT NULL,      -- the event clock and CLOCK_REALTIME at the previous drain
  start_ns    INTEGER NOT NULL,      --   (the first chunk: when recording started)
  end_ticks   INTEGER NOT NULL,      -- the same at this drain
  end_ns      INTEGER NOT NULL,
  events      INTEGER NOT NULL,      -- records in data
  raw_bytes   INTEGER NOT NULL,      -- bytes of data inflated
  codec       INTEGER NOT NULL,      -- 1: data is zlib; 0: data is the records themselves
  data        BLOB NOT NULL
);
