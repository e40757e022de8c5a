/*
 * store_file.h - internals of the local directory backend (store_file.c)
 * that tests reach into.  The backend's constructor is in store.h.
 *
 * Layer: services.  Not for production callers.
 */
#ifndef DSQ_STORE_FILE_H
#define DSQ_STORE_FILE_H

#include "store.h"

/*
 * Make st (a file store) publish create-only puts with link(2) + unlink
 * instead of renameat2(RENAME_NOREPLACE), as it does on filesystems
 * without RENAME_NOREPLACE.  Call before st is shared between threads.
 */
void dsq__store_file_force_link(struct dsq_store *st);

#endif
