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
);  -- ('format','heapwatch'), ('schema_version','1'), ('heapwatch_version', ...)

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

-- Loaded modules (executable, shared libraries, vdso). A runtime PC belongs to the module
-- whose [text_start, text_end) holds it; its link-time address is pc - load_bias.
CREATE TABLE module(
  id         INTEGER PRIMARY KEY,
  path       TEXT NOT NULL,        -- absolute path; '[vdso]' for the vdso
  build_id   TEXT,                 -- hex NT_GNU_BUILD_ID, NULL if none
  load_bias  INTEGER NOT NULL,     -- dlpi_addr
  text_start INTEGER NOT NULL,     -- lowest executable PT_LOAD, runtime address
  text_end   INTEGER NOT NULL,     -- end of highest executable PT_LOAD, runtime address
  first_snapshot INTEGER           -- first snapshot that saw it loaded (NULL: seen at start)
);

CREATE TABLE module_segment(
  module_id INTEGER NOT NULL REFERENCES module(id),
  start     INTEGER NOT NULL,      -- runtime address
  end       INTEGER NOT NULL,
  flags     INTEGER NOT NULL       -- PF_R=4 | PF_W=2 | PF_X=1
);

-- Allocation stacks as a prefix tree of frames: a row is one frame (a return address: the
-- shim's own frames are already removed, so symbolize pc - 1) and its caller's row (parent 0 =
-- outermost frame). A stack id is the id of its innermost frame; its frames are that row and
-- its parents up to the root. Id 0 is never stored: it means "not sampled".
CREATE TABLE stack(
  id     INTEGER PRIMARY KEY,
  parent INTEGER NOT NULL,
  pc     INTEGER NOT NULL
);

CREATE TABLE snapshot(
  id            INTEGER PRIMARY KEY,   -- 1, 2, 3 ... in the order taken
  time_ns       INTEGER NOT NULL,
  label         TEXT,
  trigger       TEXT NOT NULL,         -- 'signal' | 'api' | 'interval' | 'exit'
  threads       INTEGER NOT NULL,      -- threads in the process at that moment
  live_objects  INTEGER NOT NULL,      -- exact, from the live-object table
  live_bytes    INTEGER NOT NULL,
  pause_ns      INTEGER NOT NULL,      -- time the application was held
  walk_ns       INTEGER NOT NULL,      -- time to collect the per-stack counters
  write_ns      INTEGER NOT NULL       -- time to stream the live objects and write the rows (before commit)
);

-- Go-style cumulative per-stack counters at the moment of a snapshot, already unbiased for
-- sampling (each sampled allocation of size s at rate R counts 1/(1-exp(-s/R)) objects and
-- s/(1-exp(-s/R)) bytes; exact when R = 1). inuse = alloc - free. *_samples are raw counts.
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

-- Every live heap block at the moment of a snapshot (sampled or not).
CREATE TABLE object(
  snapshot_id INTEGER NOT NULL,
  address     INTEGER NOT NULL,
  size        INTEGER NOT NULL,
  stack_id    INTEGER NOT NULL,      -- 0 = allocation not sampled
  seq         INTEGER NOT NULL,      -- allocation sequence number (process-wide, 32 bits)
  tid         INTEGER NOT NULL,      -- kernel thread id of the allocating thread
  class       INTEGER                -- reachability (later schema); NULL = not computed
);
