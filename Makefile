# pluralrm: PGXS build
EXTENSION = pluralrm
EXTVERSION = 0.2.0
MODULE_big = pluralrm

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

CORE_SRCS = $(sort $(wildcard src/core/*.c))
PG_SRCS = $(sort $(wildcard src/*.c))
OBJS = $(PG_SRCS:.c=.o) $(CORE_SRCS:.c=.o)

# The current install script is built from the parts in sql/install/, in
# name order. A released version's install script is frozen in sql/ and
# never edited; the upgrade script from it is built from the hand-written
# changes in sql/upgrade/ followed by the install parts new since then.
NEW_IN_0_2_0 = sql/install/38_score_support.sql \
	sql/install/45_item_classes.sql \
	sql/install/61_refit_run.sql
UPGRADE_0_2_0 = sql/upgrade/0.1.0--0.2.0.sql $(NEW_IN_0_2_0)
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql \
	sql/$(EXTENSION)--0.1.0--0.2.0.sql
DATA = sql/$(EXTENSION)--0.1.0.sql

# pg_regress: every sql/NAME.sql that is not an install or upgrade script
REGRESS = $(sort $(basename $(notdir $(filter-out sql/$(EXTENSION)--%,$(wildcard sql/*.sql)))))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

PG_CPPFLAGS = -I$(srcdir)/src -I$(srcdir)/src/core
PG_CFLAGS = -std=gnu99 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
SHLIB_LINK += -lopenblas -lm

EXTRA_CLEAN = test/core/unit test/core/*.o

# No LLVM bitcode: PGXS would set with_llvm = yes itself
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Rebuild objects when any header changes (PGXS tracks no header deps)
$(OBJS): $(wildcard src/*.h src/core/*.h)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(sort $(wildcard sql/install/*.sql))
	cat $^ > $@

sql/$(EXTENSION)--0.1.0--0.2.0.sql: $(UPGRADE_0_2_0)
	cat $^ > $@

# Unit tests of the numerical core: plain C, no server.
.PHONY: unittest
unittest:
	$(MAKE) -C test/core run
