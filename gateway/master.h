/*
 * master.h - the supervising process: forks the workers, respawns one that dies (logging why),
 * passes SIGHUP on (reload), and on SIGTERM or SIGINT lets the workers drain, then exits. With
 * --watch it also reloads the workers when a module file in SFF_FUNCTIONS_DIR changes (inotify).
 */
#ifndef SFF_MASTER_H
#define SFF_MASTER_H

#include "config.h"

/* Runs until stopped; returns the process exit status. */
int sff_master_run(const sff_config_t *config, int watch);

#endif
