/* Whether the data file a process has open is still the store's (store_replaced.c): the
 * checks on an environment and its directory, below struct store, which store.c wraps. */
#ifndef LMTASKS_STORE_REPLACED_H
#define LMTASKS_STORE_REPLACED_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

/* What the last check that failed with LMT_EREPLACED said (per thread). */
const char *store_check_replaced_text(void);

/* In a read transaction of env: LMT_EREPLACED when the lock counts more transactions
 * than the file open holds (a file copied over it in place). */
int replaced_snapshot(MDB_env *env, const char *dir, MDB_txn *txn);

/* LMT_EREPLACED when dir/data.mdb is another file than env's, or went back in time. */
int replaced_check(MDB_env *env, const char *dir);

/* In a write transaction just begun: LMT_EREPLACED unless the data file's newest
 * transaction is the one the lock file counts. */
int replaced_check_write(MDB_env *env, const char *dir, MDB_txn *txn);

/* 1 when dir/data.mdb is another file that follows env's (a compacted copy swapped in),
 * 0 when it is env's own, LMT_EREPLACED when it is another and does not follow, or an
 * error. */
int replaced_follows(MDB_env *env, const char *dir);

/* replaced_check_write(), and replaced_follows(): 0 to write, 1 when the store is to be
 * opened again and the write made there, else an error. */
int replaced_check_write_follow(MDB_env *env, const char *dir, MDB_txn *txn);

/* Flushes path (a file, or a directory a rename was made in: flags O_RDONLY |
 * O_DIRECTORY) to the disk; 0 or an errno. */
int store_file_sync(const char *path, int flags);

/* env's data file: its path (dir/data.mdb, cut to size bytes) in data and its descriptor
 * in *fd. */
int replaced_data_file(MDB_env *env, const char *dir, char *data, size_t size,
    mdb_filehandle_t *fd);

/*
 * LMDB 0.9's meta pages as the data file holds them (mdb.c: MDB_page's header, MDB_meta,
 * MDB_db; file format version 1, the same through the 0.9 series), for what LMDB has no
 * call for: reading the newest transaction id of a data file no environment has open
 * (store_follows()) and giving a compacted copy its source's transaction id
 * (store_compact()).  Pages 0 and 1; the newest is the one with the larger txnid.
 */
struct lmdb_db {
	uint32_t pad;
	uint16_t flags, depth;
	size_t branch_pages, leaf_pages, overflow_pages, entries, root;
};
struct lmdb_meta {
	uint32_t magic, version;
	void *address;
	size_t mapsize;
	struct lmdb_db dbs[2];
	size_t last_pg, txnid;
};
struct lmdb_page_head {
	size_t pgno;
	uint16_t pad, flags;
	uint16_t lower, upper;
};
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1
#define LMDB_P_META 0x08
#define LMDB_META_AT sizeof(struct lmdb_page_head)

/* The newest transaction id of the data file PATH/data.mdb as its meta pages (read
 * whole, the page size psize) say; 0, LMT_ENOSTORE for a file that is no LMDB data
 * file, or an errno (store_replaced.c). */
int store_file_txnid(const char *data, size_t psize, size_t *txnid, size_t *older);

#endif
