/*
 * names.c - file names on the mount <-> store prefix components (the
 * rules are in names.h and docs/mount.md, "Names").
 *
 * Layer: FUSE front end; pure functions, no I/O, no locks.
 */
#include "names.h"

#include "env.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Length of the UTF-8 sequence at p (shortest forms, no surrogates, at
   most U+10FFFF), 0 if invalid; control characters and DEL are invalid. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x20 || c == 0x7f)
        return 0;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
        unsigned char hi = c == 0xED ? 0x9F : 0xBF;
        if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
        unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
        if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

static int valid_text(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_len(p);
        if (!n)
            return 0;
        p += n;
    }
    return 1;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* NAME@vN or NAME@YYYY-MM-DD... anywhere: reserved for version views. */
static int view_syntax(const char *s)
{
    for (const char *p = strchr(s, '@'); p; p = strchr(p + 1, '@')) {
        if (p[1] == 'v' && is_digit(p[2]))
            return 1;
        if (is_digit(p[1]) && is_digit(p[2]) && is_digit(p[3]) &&
            is_digit(p[4]) && p[5] == '-')
            return 1;
    }
    return 0;
}

/* Names the stores and the mount keep for themselves. */
static int reserved(const char *s, int at_root)
{
    if (!strncmp(s, ".dsqtmp", 7) || !strncmp(s, "_dsqlfs", 7) ||
        !strcmp(s, ".dsqlfs-probe"))
        return 1;
    return at_root && !strcmp(s, ".dsqlfs");
}

enum dsq_side_kind dsq_name_side(const char *name, size_t *baselen)
{
    static const struct {
        const char *suffix;
        enum dsq_side_kind kind;
    } fixed[] = {{"-journal", DSQ_SIDE_JOURNAL},
                 {"-wal", DSQ_SIDE_WAL},
                 {"-shm", DSQ_SIDE_SHM}};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        size_t k = strlen(fixed[i].suffix);
        if (n > k && !strcmp(name + n - k, fixed[i].suffix)) {
            if (baselen)
                *baselen = n - k;
            return fixed[i].kind;
        }
    }
    /* NAME-mj + hex digits (SQLite writes "-mj%06X9%02X") */
    for (const char *p = strstr(name, "-mj"); p; p = strstr(p + 1, "-mj")) {
        const char *q = p + 3;
        if (p == name || !*q)
            continue;
        while (*q && strchr("0123456789ABCDEFabcdef", *q))
            q++;
        if (!*q) {
            if (baselen)
                *baselen = (size_t)(p - name);
            return DSQ_SIDE_SUPER;
        }
    }
    return DSQ_SIDE_NONE;
}

static int common_checks(const char *name, int at_root, const char **why)
{
    if (!name[0] || !strcmp(name, ".") || !strcmp(name, "..")) {
        *why = "not a file name";
        return -EINVAL;
    }
    if (!valid_text(name)) {
        *why = "not valid UTF-8, or holds a control character (store keys "
               "cannot)";
        return -EINVAL;
    }
    if (reserved(name, at_root)) {
        *why = "the name is reserved for the store's own objects";
        return -EPERM;
    }
    if (view_syntax(name)) {
        *why = "names with '@v<digits>' or '@<date>' are reserved for "
               "version views";
        return -EINVAL;
    }
    return 0;
}

int dsq_name_db_component(const char *name, int at_root, char *out,
                          size_t outsz, const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    int r = common_checks(name, at_root, why);
    if (r)
        return r;
    size_t n = strlen(name);
    if (n > DSQ_NAME_MAX) {
        *why = "longer than 247 bytes (its -journal would not fit NAME_MAX)";
        return -ENAMETOOLONG;
    }
    if (dsq_name_side(name, NULL) != DSQ_SIDE_NONE) {
        *why = "a name of SQLite's side files (-journal, -wal, -shm, -mj)";
        return -EINVAL;
    }
    int legacy =
        n > 3 && !strcmp(name + n - 3, ".db") && name[n - 4] != DSQ_NAME_MARK;
    size_t len = legacy ? n - 3 : n + 1;
    if (len + 1 > outsz) {
        *why = "the store prefix would be too long";
        return -ENAMETOOLONG;
    }
    if (legacy) {
        memcpy(out, name, n - 3);
        out[n - 3] = 0;
        /* the stem is a prefix component of its own: check it too */
        if (reserved(out, at_root) || !strcmp(out, ".") || !strcmp(out, "..")) {
            *why = "the name is reserved for the store's own objects";
            return -EPERM;
        }
    } else {
        memcpy(out, name, n);
        out[n] = DSQ_NAME_MARK;
        out[n + 1] = 0;
    }
    return 0;
}

int dsq_name_dir_check(const char *name, int at_root, const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    int r = common_checks(name, at_root, why);
    if (r)
        return r;
    if (name[strlen(name) - 1] == DSQ_NAME_MARK) {
        *why = "a directory name cannot end with '!' (store prefixes "
               "ending with '!' are databases)";
        return -EINVAL;
    }
    if (strlen(name) > 255) {
        *why = "longer than NAME_MAX";
        return -ENAMETOOLONG;
    }
    return 0;
}

int dsq_name_component_marked(const char *comp)
{
    size_t n = strlen(comp);
    return n > 1 && comp[n - 1] == DSQ_NAME_MARK;
}

int dsq_name_db_from_component(const char *comp, int at_root, char *out,
                               size_t outsz)
{
    size_t n = strlen(comp);
    if (!n || n + 4 > outsz)
        return -1;
    if (dsq_name_component_marked(comp)) {
        memcpy(out, comp, n - 1);
        out[n - 1] = 0;
    } else {
        snprintf(out, outsz, "%s.db", comp);
    }
    /* must map back to comp: anything else is not shown */
    char back[1100];
    const char *why;
    if (dsq_name_db_component(out, at_root, back, sizeof(back), &why) != 0 ||
        strcmp(back, comp) != 0)
        return -1;
    return 0;
}

int dsq_name_dir_shown(const char *comp, int at_root)
{
    const char *why;
    return dsq_name_dir_check(comp, at_root, &why) == 0;
}

/* The view whose '@' is at name[at]: 0 and *vn filled, or -1. */
static int view_at(const char *name, size_t at, struct dsq_view_name *vn)
{
    const char *t = name + at + 1;
    size_t tl = strlen(t), len = 0;
    memset(vn, 0, sizeof(*vn));
    if (at == 0)
        return -1; /* no NAME */
    if (t[0] == 'v' && is_digit(t[1])) {
        uint64_t v = 0;
        len = 1;
        while (is_digit(t[len])) {
            unsigned d = (unsigned)(t[len] - '0');
            if (v > (UINT64_MAX - d) / 10)
                return -1;
            v = v * 10 + d;
            len++;
        }
        if (v == 0)
            return -1;
        vn->version = v;
    } else {
        /* the time ends at Z, or 6 bytes after an offset's sign (which
           comes after the minutes: byte 16 on) */
        for (size_t i = 16; i < tl && !len; i++) {
            if (t[i] == 'Z')
                len = i + 1;
            else if ((t[i] == '+' || t[i] == '-') && i + 6 <= tl)
                len = i + 6;
        }
        if (!len || dsq_parse_time_user(t, len, &vn->at_ms) != 0)
            return -1;
        vn->by_time = 1;
    }
    const char *ext = t + len;
    if (*ext && (ext[0] != '.' || !ext[1]))
        return -1;
    if (at + strlen(ext) >= sizeof(vn->base))
        return -1;
    memcpy(vn->base, name, at);
    strcpy(vn->base + at, ext);
    return 0;
}

int dsq_name_view(const char *name, struct dsq_view_name *vn)
{
    for (const char *p = strrchr(name, '@'); p;) {
        if (view_at(name, (size_t)(p - name), vn) == 0)
            return 1;
        const char *q = NULL;
        for (const char *r = name; r < p; r++)
            if (*r == '@')
                q = r;
        p = q;
    }
    return 0;
}

int dsq_name_view_side(const char *name)
{
    size_t bl = 0;
    char base[256];
    struct dsq_view_name vn;
    if (dsq_name_side(name, &bl) == DSQ_SIDE_NONE || bl >= sizeof(base))
        return 0;
    memcpy(base, name, bl);
    base[bl] = 0;
    return dsq_name_view(base, &vn);
}
