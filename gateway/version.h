/* version.h - the version of sff. */
#ifndef SFF_VERSION_H
#define SFF_VERSION_H

#define SFF_VERSION "0.1.0"

#endif
