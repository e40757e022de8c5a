/*
 * listing.c - the store's view of a directory of the mount (docs/mount.md,
 * "A slow store"): the listing itself (a LIST by delimiter, one probe per
 * unmarked sub-prefix) and the last listing of each directory, so that
 * `ls` never waits long for a slow or unreachable store.
 *
 * A call starts a listing in a thread of its own (one per directory at a
 * time; later callers wait for the one in flight) and waits for it at
 * most DSQ_LISTING_WAIT_MS when an earlier listing of that directory is
 * known: then it answers with the earlier one, and the listing in flight
 * replaces it when it ends.  Listings are facts about the store at one
 * time: a stale one lacks what other hosts created since, and a database
 * it shows that another host deleted since fails at open as usual.  What
 * this mount did itself is never answered stale: every database it
 * created (first commit) or deleted is noted with the time, and a note
 * newer than the start of the listing answered overrides it (a program
 * that deletes test.db* by a glob and recreates the database must not
 * miss the one it committed a moment ago).  The caller adds databases
 * created here with nothing committed yet.
 *
 * Locking: lt->mu guards the table and every entry; the store is called
 * without it.  Lock order: fs->mu is never held while lt->mu is taken.
 */
#include "listing.h"

#include "fs.h"
#include "log.h"
#include "names.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Notes kept per directory until a listing that started after them
   ends; one more drops them and the last listing with them, so that the
   next call waits for a fresh one. */
#define DSQ_NOTES_MAX 1024

struct note { /* a database this mount created or deleted */
    char *name;
    int present;
    uint64_t at_ms;
};

struct entry {
    char *dir;
    struct note *notes; /* newer than the last listing's start */
    size_t n_notes;
    struct dsq_namelist dbs, dirs; /* the last listing (have) */
    int have;
    uint64_t at_ms;    /* when the last listing started */
    uint64_t floor_ms; /* a listing started before this is not kept: the
                          notes it needed were dropped (DSQ_NOTES_MAX) */
    int busy;          /* a listing in flight */
    int err;           /* its result: 0 or -errno */
    uint64_t gen;      /* listings ended so far */
};

struct dsq_listing {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct entry **v;
    size_t n, cap;
    int threads; /* listing threads running */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void dsq_names_add(struct dsq_namelist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n] = strdup(s);
    if (l->v[l->n])
        l->n++;
}

void dsq_names_free(struct dsq_namelist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static void names_copy(struct dsq_namelist *to, const struct dsq_namelist *from)
{
    for (size_t i = 0; i < from->n; i++)
        dsq_names_add(to, from->v[i]);
}

static void notes_free(struct entry *en)
{
    for (size_t i = 0; i < en->n_notes; i++)
        free(en->notes[i].name);
    free(en->notes);
    en->notes = NULL;
    en->n_notes = 0;
}

static void names_remove(struct dsq_namelist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s)) {
            free(l->v[i]);
            l->v[i] = l->v[--l->n];
            return;
        }
}

/* The listing itself: what the store holds under dir/ (one LIST page
   after another, a probe for each sub-prefix whose name does not say
   what it is).  0 or -errno (logged). */
static int list_store_dir(struct dsq_fs *fs, const char *dir,
                          struct dsq_namelist *dbs, struct dsq_namelist *dirs)
{
    char pre[DSQ_KEY_MAX];
    struct dsq_err e;
    dsq_err_clear(&e);
    snprintf(pre, sizeof(pre), "%s%s", dir, dir[0] ? "/" : "");
    char *token = NULL;
    do {
        struct dsq_list_req req = {
            .prefix = pre, .delimiter = "/", .token = token};
        struct dsq_list_page pg = {0};
        dsq_rc rc = dsq_store_list(fs->st, &req, &pg, &e);
        free(token);
        token = NULL;
        if (rc != DSQ_OK) {
            dsq_log(DSQ_LOG_ERR, "fs", "listing %s: %s", pre,
                    dsq_err_text(&e, rc));
            return -dsq_rc_errno(rc);
        }
        for (size_t i = 0; i < pg.n_prefixes; i++) {
            const char *cp = pg.common_prefixes[i] + strlen(pre);
            size_t l = strlen(cp);
            if (l < 2)
                continue;
            char comp[1024], name[1100];
            int at_root = dir[0] == 0;
            snprintf(comp, sizeof(comp), "%.*s", (int)(l - 1), cp);
            if (dsq_name_component_marked(comp)) {
                /* a database by its name alone: no request */
                if (dsq_name_db_from_component(comp, at_root, name,
                                               sizeof(name)) == 0)
                    dsq_names_add(dbs, name);
                continue;
            }
            char child[DSQ_KEY_MAX];
            int cl = snprintf(child, sizeof(child), "%s%s%s", dir,
                              dir[0] ? "/" : "", comp);
            if (cl < 0 || (size_t)cl >= sizeof(child))
                continue;
            int db = 0, isdir = 0;
            if (dsq_fs_store_probe(fs, child, &db, &isdir) < 0)
                continue;
            if (db && dsq_name_db_from_component(comp, at_root, name,
                                                 sizeof(name)) == 0)
                dsq_names_add(dbs, name);
            else if (isdir && dsq_name_dir_shown(comp, at_root))
                dsq_names_add(dirs, comp);
        }
        if (pg.next_token)
            token = strdup(pg.next_token);
        dsq_list_page_cleanup(&pg);
    } while (token);
    return 0;
}

static struct dsq_listing *table(struct dsq_fs *fs)
{
    static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&init_mu);
    if (!fs->listing) {
        struct dsq_listing *lt = calloc(1, sizeof(*lt));
        if (lt) {
            pthread_mutex_init(&lt->mu, NULL);
            pthread_cond_init(&lt->cv, NULL);
            fs->listing = lt;
        }
    }
    pthread_mutex_unlock(&init_mu);
    return fs->listing;
}

/* The entry of dir, NULL if none; lt->mu held. */
static struct entry *entry_find(struct dsq_listing *lt, const char *dir)
{
    for (size_t i = 0; i < lt->n; i++)
        if (!strcmp(lt->v[i]->dir, dir))
            return lt->v[i];
    return NULL;
}

/* The entry of dir, made if new; lt->mu held.  NULL: no memory. */
static struct entry *entry_of(struct dsq_listing *lt, const char *dir)
{
    struct entry *found = entry_find(lt, dir);
    if (found)
        return found;
    if (lt->n == lt->cap) {
        size_t nc = lt->cap ? lt->cap * 2 : 8;
        struct entry **nv = realloc(lt->v, nc * sizeof(*nv));
        if (!nv)
            return NULL;
        lt->v = nv;
        lt->cap = nc;
    }
    struct entry *en = calloc(1, sizeof(*en));
    if (en)
        en->dir = strdup(dir);
    if (!en || !en->dir) {
        free(en);
        return NULL;
    }
    lt->v[lt->n++] = en;
    return en;
}

struct job {
    struct dsq_fs *fs;
    struct entry *en;
    uint64_t started;
};

static void *list_thread(void *arg)
{
    struct job *j = arg;
    struct dsq_listing *lt = j->fs->listing;
    struct dsq_namelist dbs = {0}, dirs = {0};
    int r = list_store_dir(j->fs, j->en->dir, &dbs, &dirs);
    pthread_mutex_lock(&lt->mu);
    struct entry *en = j->en;
    if (r == 0 && j->started < en->floor_ms) {
        dsq_names_free(&dbs); /* older than notes that were dropped */
        dsq_names_free(&dirs);
    } else if (r == 0) {
        dsq_names_free(&en->dbs);
        dsq_names_free(&en->dirs);
        en->dbs = dbs;
        en->dirs = dirs;
        en->have = 1;
        en->at_ms = j->started;
        /* notes older than this listing's start are in it */
        size_t k = 0;
        for (size_t i = 0; i < en->n_notes; i++) {
            if (en->notes[i].at_ms < j->started)
                free(en->notes[i].name);
            else
                en->notes[k++] = en->notes[i];
        }
        en->n_notes = k;
    } else {
        dsq_names_free(&dbs);
        dsq_names_free(&dirs);
    }
    en->err = r;
    en->busy = 0;
    en->gen++;
    lt->threads--;
    pthread_cond_broadcast(&lt->cv);
    pthread_mutex_unlock(&lt->mu);
    free(j);
    return NULL;
}

/* Starts a listing of en unless one is in flight; lt->mu held.  0 or
   -errno. */
static int start(struct dsq_fs *fs, struct dsq_listing *lt, struct entry *en)
{
    if (en->busy)
        return 0;
    struct job *j = malloc(sizeof(*j));
    if (!j)
        return -ENOMEM;
    *j = (struct job){fs, en, mono_ms()};
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int r = pthread_create(&t, &a, list_thread, j);
    pthread_attr_destroy(&a);
    if (r) {
        free(j);
        return -r;
    }
    en->busy = 1;
    lt->threads++;
    return 0;
}

int dsq_listing_get(struct dsq_fs *fs, const char *dir,
                    struct dsq_namelist *dbs, struct dsq_namelist *dirs,
                    unsigned *stale_ms)
{
    struct dsq_listing *lt = table(fs);
    *stale_ms = 0;
    if (!lt)
        return -ENOMEM;
    pthread_mutex_lock(&lt->mu);
    struct entry *en = entry_of(lt, dir);
    if (!en) {
        pthread_mutex_unlock(&lt->mu);
        return -ENOMEM;
    }
    /* the answer is a listing that started after this call: the one in
       flight may have started before, so then the next one */
    uint64_t need = en->gen + (en->busy ? 2 : 1), t0 = mono_ms();
    int r = 0, slow = 0;
    /* ... and one that was kept (a listing older than dropped notes is
       not: drop_listing) */
    while (en->gen < need || !en->have) {
        if (en->gen >= need && en->err)
            break; /* it failed, and there is no earlier one */
        if (!en->busy && (r = start(fs, lt, en)) != 0)
            break;
        if (!en->have) {
            pthread_cond_wait(&lt->cv, &lt->mu);
            continue;
        }
        uint64_t now = mono_ms();
        if (now - t0 >= DSQ_LISTING_WAIT_MS) {
            slow = 1;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec +
                      (DSQ_LISTING_WAIT_MS - (now - t0)) * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&lt->cv, &lt->mu, &ts);
    }
    if (!slow && !r && en->err)
        r = en->err;
    if (r && en->have) {
        /* the store failed: the last listing, said so */
        slow = 2;
        r = 0;
    }
    if (!r) {
        if (slow) {
            *stale_ms = (unsigned)(mono_ms() - en->at_ms);
            dsq_log(DSQ_LOG_NOTICE, "fs",
                    "listing /%s: the store %s; answered with the listing "
                    "of %u ms ago",
                    dir, slow == 1 ? "is slow" : "failed", *stale_ms);
        }
        names_copy(dbs, &en->dbs);
        names_copy(dirs, &en->dirs);
        for (size_t i = 0; i < en->n_notes; i++) {
            const struct note *no = &en->notes[i];
            if (no->at_ms < en->at_ms)
                continue;
            if (no->present)
                dsq_names_add(dbs, no->name);
            else
                names_remove(dbs, no->name);
        }
    }
    pthread_mutex_unlock(&lt->mu);
    return r;
}

/* Forget en's notes and every listing that started before now (lt->mu
   held): the next call waits for a fresh listing. */
static void drop_listing(struct entry *en)
{
    notes_free(en);
    dsq_names_free(&en->dbs);
    dsq_names_free(&en->dirs);
    en->have = 0;
    en->floor_ms = mono_ms() + 1;
}

void dsq_listing_note(struct dsq_fs *fs, const char *path, int present)
{
    struct dsq_listing *lt = table(fs);
    if (!lt)
        return;
    const char *slash = strrchr(path, '/');
    char dir[DSQ_KEY_MAX];
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 0, path);
    const char *name = slash ? slash + 1 : path;
    pthread_mutex_lock(&lt->mu);
    struct entry *en = entry_find(lt, dir);
    /* only a listing that started before now needs the note: the last
       one or one in flight */
    if (en && (en->have || en->busy)) {
        struct note *no = NULL;
        for (size_t i = 0; i < en->n_notes && !no; i++)
            if (!strcmp(en->notes[i].name, name))
                no = &en->notes[i];
        if (!no && en->n_notes >= DSQ_NOTES_MAX) {
            drop_listing(en);
        } else if (!no) {
            struct note *nv =
                realloc(en->notes, (en->n_notes + 1) * sizeof(*nv));
            char *nm = strdup(name);
            if (nv)
                en->notes = nv;
            if (nv && nm) {
                no = &en->notes[en->n_notes++];
                no->name = nm;
            } else {
                free(nm);
                drop_listing(en); /* no memory */
            }
        }
        if (no) {
            no->present = present;
            no->at_ms = mono_ms();
        }
    }
    pthread_mutex_unlock(&lt->mu);
}

void dsq_listing_shutdown(struct dsq_fs *fs)
{
    struct dsq_listing *lt = fs->listing;
    if (!lt)
        return;
    pthread_mutex_lock(&lt->mu);
    while (lt->threads)
        pthread_cond_wait(&lt->cv, &lt->mu);
    pthread_mutex_unlock(&lt->mu);
    for (size_t i = 0; i < lt->n; i++) {
        dsq_names_free(&lt->v[i]->dbs);
        dsq_names_free(&lt->v[i]->dirs);
        notes_free(lt->v[i]);
        free(lt->v[i]->dir);
        free(lt->v[i]);
    }
    free(lt->v);
    pthread_cond_destroy(&lt->cv);
    pthread_mutex_destroy(&lt->mu);
    free(lt);
    fs->listing = NULL;
}
