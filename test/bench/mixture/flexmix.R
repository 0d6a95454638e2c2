# flexmix side of the mixture benchmark (run by test/bench/mixture/bench.py):
#   Rscript flexmix.R FILE K NREP SEED
# FILE is a headerless CSV with one comparison per line: user id, label y,
# then the d coordinates of x. For y = 1, x is chosen - rejected; for y = 0,
# x is rejected - chosen (half the rows are flipped so that the binomial
# GLM sees both labels; the likelihood is the same). Fits a latent-class
# binomial GLM without intercept, grouped by user, with stepFlexmix's NREP
# starts, and prints "key value..." lines: the elapsed and CPU seconds of
# the fit alone, R's log-likelihood, EM iterations and convergence of the best
# start, its priors and its k x d coefficients (row-major).
suppressPackageStartupMessages(library(flexmix))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 4)
    stop("usage: Rscript flexmix.R FILE K NREP SEED")
file <- args[1]
k <- as.integer(args[2])
nrep <- as.integer(args[3])
seed <- as.integer(args[4])

df <- read.csv(file, header = FALSE)
d <- ncol(df) - 2
names(df) <- c("user", "y", paste0("x", seq_len(d)))
df$user <- factor(df$user)
f <- as.formula(paste("cbind(y, 1 - y) ~ 0 +",
                      paste0("x", seq_len(d), collapse = " + "), "| user"))

set.seed(seed)
t0 <- proc.time()
fit <- stepFlexmix(f, data = df, k = k, nrep = nrep,
                   model = FLXMRglm(family = "binomial"), verbose = FALSE)
spent <- proc.time() - t0

coefs <- parameters(fit)           # d x k: one column per component
if (nrow(coefs) != d || any(grepl("Intercept", rownames(coefs))))
    stop("unexpected coefficient layout: ",
         paste(rownames(coefs), collapse = " "))
out <- function(key, values)
    cat(key, format(values, digits = 17), "\n")
out("seconds", spent[["elapsed"]])
out("cpu", spent[["user.self"]] + spent[["sys.self"]])
out("loglik", as.numeric(logLik(fit)))
out("k", fit@k)
out("iterations", fit@iter)
out("converged", as.integer(fit@converged))
out("prior", prior(fit))
out("coef", as.vector(coefs))      # column-major d x k = row-major k x d
