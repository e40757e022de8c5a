/*
 * names.h - file names on the mount and the store prefixes they stand for
 * (docs/mount.md, "Names").
 *
 * Layer: FUSE front end; pure string functions (no I/O, no locks), so
 * every rule here is a unit test away.
 *
 * The mapping, for one path component:
 *   - a database file NAME.db (stem NAME not empty, not ending with the
 *     mark) is the prefix NAME: how every store written before this rule
 *     shows its databases;
 *   - any other database file name F is the prefix F followed by the mark
 *     '!' (db.sqlite3 -> "db.sqlite3!", noext -> "noext!", a!.db ->
 *     "a!.db!");
 *   - a directory D is the prefix D (never ending with the mark).
 * Read back: a prefix ending with the mark is the database named without
 * it; any other prefix holding a database is NAME.db; the rest are
 * directories.  Two names never share a prefix, and a name read back from
 * the store maps to the same prefix again.
 */
#ifndef DSQ_FUSE_NAMES_H
#define DSQ_FUSE_NAMES_H

#include <stddef.h>
#include <stdint.h>

#define DSQ_NAME_MARK '!'
/* longest database name: NAME-journal must fit NAME_MAX (255) */
#define DSQ_NAME_MAX 247

enum dsq_side_kind {
    DSQ_SIDE_NONE = 0,
    DSQ_SIDE_JOURNAL, /* NAME-journal */
    DSQ_SIDE_WAL,     /* NAME-wal */
    DSQ_SIDE_SHM,     /* NAME-shm */
    DSQ_SIDE_SUPER,   /* NAME-mjXXXXXXXXX (super-journal) */
};

/*
 * Whether name is one of SQLite's side files of a database NAME (NAME
 * not empty); *baselen (may be NULL) gets strlen(NAME).
 */
enum dsq_side_kind dsq_name_side(const char *name, size_t *baselen);

/*
 * The prefix component of a database file name: 0, or -errno with a
 * reason in *why (a static string):
 *   -EINVAL       not UTF-8, a control character, '.' or '..', a name
 *                 reserved for version views (NAME@vN, NAME@TIME)
 *   -EPERM        a name the store keeps for itself (.dsqtmp..., _dsqlfs...,
 *                 .dsqlfs-probe, and .dsqlfs at the root)
 *   -ENAMETOOLONG longer than DSQ_NAME_MAX bytes, or the prefix would not
 *                 fit outsz
 */
int dsq_name_db_component(const char *name, int at_root, char *out,
                          size_t outsz, const char **why);

/* The same checks for a directory name (which maps to itself, and must
   not end with the mark). */
int dsq_name_dir_check(const char *name, int at_root, const char **why);

/* 1 if a store prefix component ends with the mark (a database). */
int dsq_name_component_marked(const char *comp);

/*
 * The file name a database prefix component shows as: 0, or -1 if the
 * component must not show (reserved, not a valid name, or it would read
 * as a side file).
 */
int dsq_name_db_from_component(const char *comp, int at_root, char *out,
                               size_t outsz);

/*
 * Version views (docs/mount.md, "Versions as files"): NAME@vN.EXT and
 * NAME@TIME.EXT (or without .EXT) are version N, or the version current
 * at TIME, of the database file NAME.EXT (NAME without an extension:
 * NAME@vN, NAME@TIME).  TIME is YYYY-MM-DDTHH:MM[:SS[.f..fff]] then Z or
 * +HH:MM / -HH:MM.  The extension is what follows the version or time
 * ('.' and at least one byte).  The last '@' that starts a valid version
 * or time is the one that counts.
 */
struct dsq_view_name {
    char base[256]; /* the database file's name */
    int by_time;    /* 0: by version */
    uint64_t version;
    uint64_t at_ms;
};
/* 1 if name is a view name (*vn filled), 0 if not. */
int dsq_name_view(const char *name, struct dsq_view_name *vn);
/* 1 if name is a side file (journal, -wal, ...) of a view name. */
int dsq_name_view_side(const char *name);

/* 1 if a directory prefix component may show as a directory. */
int dsq_name_dir_shown(const char *comp, int at_root);

#endif
