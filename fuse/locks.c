/*
 * locks.c - POSIX byte-range lock tables (see locks.h).
 *
 * A table holds few entries (SQLite takes at most three ranges per
 * process), so everything is a linear scan.
 */
#include "locks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

void dsq_locks_free(struct dsq_locktab *t)
{
    free(t->v);
    memset(t, 0, sizeof(*t));
}

static int overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
    return a0 <= b1 && b0 <= a1;
}

const struct dsq_lock *dsq_locks_conflict(const struct dsq_locktab *t,
                                          uint64_t owner, uint64_t start,
                                          uint64_t end, int type)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct dsq_lock *l = &t->v[i];
        if (l->owner == owner || !overlap(l->start, l->end, start, end))
            continue;
        if (type == F_WRLCK || l->type == F_WRLCK)
            return l;
    }
    return NULL;
}

static int push(struct dsq_locktab *t, const struct dsq_lock *l)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 8;
        struct dsq_lock *nv = realloc(t->v, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        t->v = nv;
        t->cap = nc;
    }
    t->v[t->n++] = *l;
    return 0;
}

int dsq_locks_apply(struct dsq_locktab *t, uint64_t owner, uint64_t start,
                    uint64_t end, int type, pid_t pid)
{
    /* cut [start, end] out of the owner's locks */
    for (size_t i = 0; i < t->n;) {
        struct dsq_lock *l = &t->v[i];
        if (l->owner != owner || !overlap(l->start, l->end, start, end)) {
            i++;
            continue;
        }
        struct dsq_lock left = *l, right = *l;
        int has_left = l->start<start, has_right = l->end> end;
        t->v[i] = t->v[--t->n];
        if (has_left) {
            left.end = start - 1;
            if (push(t, &left))
                return -ENOMEM;
        }
        if (has_right) {
            right.start = end + 1;
            if (push(t, &right))
                return -ENOMEM;
        }
        /* entries pushed are outside [start, end]: rescanning is safe */
    }
    if (type == F_UNLCK)
        return 0;
    struct dsq_lock nl = {
        .owner = owner, .start = start, .end = end, .type = type, .pid = pid};
    return push(t, &nl);
}

void dsq_locks_release_owner(struct dsq_locktab *t, uint64_t owner)
{
    for (size_t i = 0; i < t->n;)
        if (t->v[i].owner == owner)
            t->v[i] = t->v[--t->n];
        else
            i++;
}

int dsq_locks_owner_any(const struct dsq_locktab *t, uint64_t owner)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].owner == owner)
            return 1;
    return 0;
}

int dsq_locks_any(const struct dsq_locktab *t, uint64_t owner_except)
{
    for (size_t i = 0; i < t->n; i++)
        if (!owner_except || t->v[i].owner != owner_except)
            return 1;
    return 0;
}

int dsq_locks_any_write(const struct dsq_locktab *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].type == F_WRLCK)
            return 1;
    return 0;
}

int dsq_locks_type_at(const struct dsq_locktab *t, uint64_t owner, uint64_t off)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].owner == owner && t->v[i].start <= off &&
            off <= t->v[i].end)
            return t->v[i].type;
    return F_UNLCK;
}
