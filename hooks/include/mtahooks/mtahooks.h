/* mtahooks: everything an MTA core or a module includes. */
#ifndef MTAHOOKS_MTAHOOKS_H
#define MTAHOOKS_MTAHOOKS_H

#include "ec_types.h"
#include "ec_hooks.h"
#include "ec_module.h"
#include "log.h"

#endif /* MTAHOOKS_MTAHOOKS_H */
