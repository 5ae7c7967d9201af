# Reference outputs from R qvalue / limma / stats for manylm's q-values, pi0, local FDR,
# propTrueNull and the smoothing spline and kernel density behind them.
#
# Run from the repository root:
#     Rscript tests/reference/qvalue.R
#
# Reads tests/reference/inputs/{bladder_expr.tsv.gz,bladder_samples.tsv,pvalues.tsv}; writes
# tests/reference/qvalue/*. Deterministic (set.seed); numbers with 17 significant digits.

suppressPackageStartupMessages({
  library(qvalue)
  library(limma)
})

ref_dir <- file.path("tests", "reference")
in_dir <- file.path(ref_dir, "inputs")
out_dir <- file.path(ref_dir, "qvalue")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
source(file.path(ref_dir, "reference_writers.R"))

cat(R.version.string, "\n")
cat("qvalue", as.character(packageVersion("qvalue")), "limma",
    as.character(packageVersion("limma")), "\n")

warn_log <- data.frame(case = character(0), warning = character(0), stringsAsFactors = FALSE)
scalars <- data.frame(case = character(0), name = character(0), value = numeric(0),
                      stringsAsFactors = FALSE)
add_scalar <- function(case, name, value) {
  scalars[nrow(scalars) + 1, ] <<- list(case, name, as.double(value))
}

# ---------------------------------------------------------------------------
# p-value vectors
# ---------------------------------------------------------------------------

# 1. bladder: limma moderated t p-values of cancerCancer, design ~ cancer + batch
expr <- read.delim(file.path(in_dir, "bladder_expr.tsv.gz"), check.names = FALSE,
                   stringsAsFactors = FALSE)
y <- as.matrix(expr[, -1])
rownames(y) <- expr$feature
samples <- read.delim(file.path(in_dir, "bladder_samples.tsv"), stringsAsFactors = FALSE)
cancer <- factor(samples$cancer, levels = c("Normal", "Biopsy", "Cancer"))
batch <- factor(samples$batch)
eb <- eBayes(lmFit(y, model.matrix(~ cancer + batch)))
p_bladder <- eb$p.value[, "cancerCancer"]

# 2. uniform: all nulls (pi0 near 1)
set.seed(101)
p_uniform <- runif(3000)

# 3. strong: 30% strong signal
set.seed(102)
p_strong <- sample(c(runif(1400), rbeta(600, 0.2, 20)))

# 4. nan_ties: rounded to 3 decimals (many ties), 20 NA, five exact 0 and five exact 1
set.seed(103)
p_ties <- round(sample(c(runif(800), rbeta(200, 0.5, 5))), 3)
p_ties[sample(1000, 20)] <- NA
p_ties[c(11, 222, 333, 444, 555)] <- 0
p_ties[c(12, 223, 334, 445, 556)] <- 1

# 5. small: the 200 committed p-values (5 NA, ties, one exact 1)
pv <- read.delim(file.path(in_dir, "pvalues.tsv"), stringsAsFactors = FALSE)
p_small <- pv$p
names(p_small) <- pv$feature

cases <- list(
  bladder = p_bladder,
  uniform = setNames(p_uniform, sprintf("u%04d", seq_along(p_uniform))),
  strong = setNames(p_strong, sprintf("s%04d", seq_along(p_strong))),
  nan_ties = setNames(p_ties, sprintf("t%04d", seq_along(p_ties))),
  small = p_small
)

# ---------------------------------------------------------------------------
# qvalue, pi0est, lfdr, propTrueNull per case
# ---------------------------------------------------------------------------

for (case in names(cases)) {
  p <- cases[[case]]
  run_case(case, {
    q_smoother <- qvalue(p)
    q_boot <- qvalue(p, pi0.method = "bootstrap")
    q_log <- qvalue(p, smooth.log.pi0 = TRUE)
    q_pfdr <- qvalue(p, pfdr = TRUE)
    q_level <- qvalue(p, fdr.level = 0.1)
    q_lambda <- qvalue(p, lambda = 0.5)
    q_fixed <- qvalue(p, pi0 = 0.8)
    lfdr_logit <- lfdr(p, pi0 = q_smoother$pi0, transf = "logit")
    lfdr_raw <- lfdr(p, pi0 = q_smoother$pi0, trunc = FALSE, monotone = FALSE)
    lfdr_adj <- lfdr(p, pi0 = q_smoother$pi0, adj = 0.8)
    significant <- rep(NA, length(p))
    significant[!is.na(p)] <- q_level$significant
    write_tsv(data.frame(feature = names(p), p = p,
                         q = q_smoother$qvalues, lfdr = q_smoother$lfdr,
                         q_bootstrap = q_boot$qvalues, lfdr_bootstrap = q_boot$lfdr,
                         q_log = q_log$qvalues, q_pfdr = q_pfdr$qvalues,
                         significant_0.1 = significant,
                         q_lambda_0.5 = q_lambda$qvalues, lfdr_lambda_0.5 = q_lambda$lfdr,
                         q_pi0_0.8 = q_fixed$qvalues, lfdr_pi0_0.8 = q_fixed$lfdr,
                         lfdr_logit = lfdr_logit, lfdr_raw = lfdr_raw, lfdr_adj_0.8 = lfdr_adj,
                         stringsAsFactors = FALSE),
              file.path(out_dir, paste0(case, ".tsv.gz")))
    write_tsv(data.frame(lambda = q_smoother$lambda, pi0_lambda = q_smoother$pi0.lambda,
                         pi0_smooth = q_smoother$pi0.smooth, pi0_smooth_log = q_log$pi0.smooth),
              file.path(out_dir, paste0(case, ".pi0.tsv")))
    add_scalar(case, "n", length(p))
    add_scalar(case, "n_na", sum(is.na(p)))
    add_scalar(case, "pi0_smoother", q_smoother$pi0)
    add_scalar(case, "pi0_bootstrap", q_boot$pi0)
    add_scalar(case, "pi0_log", q_log$pi0)
    add_scalar(case, "pi0_lambda_0.5", q_lambda$pi0)
    add_scalar(case, "pi0_lambda_0.5_raw", q_lambda$pi0.lambda)
    pe <- pi0est(p, lambda = seq(0.1, 0.8, 0.1))
    add_scalar(case, "pi0_grid_0.1_0.8", pe$pi0)
    pe <- pi0est(p, smooth.df = 4.5)
    add_scalar(case, "pi0_df_4.5", pe$pi0)
    ok <- p[!is.na(p)]
    for (method in c("lfdr", "mean", "hist", "convest")) {
      add_scalar(case, paste0("propTrueNull_", method), propTrueNull(ok, method = method))
    }
    add_scalar(case, "propTrueNull_hist_nbins_7", propTrueNull(ok, method = "hist", nbins = 7))
  })
}

# ---------------------------------------------------------------------------
# density() and smooth.spline() on their own
# ---------------------------------------------------------------------------

run_case("density", {
  x <- qnorm(pmin(pmax(p_strong, 1e-8), 1 - 1e-8))
  d <- density(x, adjust = 1.5)
  write_tsv(data.frame(x = d$x, y = d$y), file.path(out_dir, "density_strong.tsv"))
  add_scalar("density", "bw", d$bw)
})

spline_cases <- list()
# pi0-like curve, df matching
set.seed(104)
lam <- seq(0.05, 0.95, 0.05)
spline_cases$df3 <- list(x = lam, y = 0.7 + 0.1 * lam + rnorm(19, sd = 0.02), w = NULL,
                         args = list(df = 3))
# GCV on 512 noisy points (as lfdr uses it)
x512 <- seq(-3, 3, length.out = 512)
spline_cases$gcv512 <- list(x = x512, y = dnorm(x512) + rnorm(512, sd = 0.01), w = NULL,
                            args = list())
# unsorted x with ties and weights, fixed spar
xt <- round(runif(80, 0, 10), 1)
spline_cases$ties_weights_spar <- list(x = xt, y = sin(xt) + rnorm(80, sd = 0.3),
                                       w = rgamma(80, 2, 2), args = list(spar = 0.6))
# ordinary leave-one-out CV, 30 points
x30 <- sort(runif(30, 0, 1))
spline_cases$cv30 <- list(x = x30, y = x30^2 + rnorm(30, sd = 0.05), w = NULL,
                          args = list(cv = TRUE))
# df matching with all.knots on 120 points
x120 <- sort(runif(120, -2, 2))
spline_cases$df6_allknots <- list(x = x120, y = tanh(x120) + rnorm(120, sd = 0.1), w = NULL,
                                  args = list(df = 6, all.knots = TRUE))

spline_points <- NULL
for (nm in names(spline_cases)) {
  sc <- spline_cases[[nm]]
  run_case(paste0("smooth.spline ", nm), {
    s <- do.call(smooth.spline, c(list(x = sc$x, y = sc$y, w = sc$w), sc$args))
    write_tsv(data.frame(x = sc$x, y = sc$y, w = if (is.null(sc$w)) 1 else sc$w),
              file.path(out_dir, paste0("spline_", nm, ".input.tsv")))
    write_tsv(data.frame(x = s$x, fitted = s$y, lev = s$lev, yin = s$yin, w = s$w),
              file.path(out_dir, paste0("spline_", nm, ".fit.tsv")))
    rng <- range(sc$x)
    at <- c(rng[1] - 0.3 * diff(rng), seq(rng[1], rng[2], length.out = 41),
            rng[2] + 0.2 * diff(rng))
    write_tsv(data.frame(x = at, y = predict(s, at)$y, d1 = predict(s, at, deriv = 1)$y,
                         d2 = predict(s, at, deriv = 2)$y),
              file.path(out_dir, paste0("spline_", nm, ".predict.tsv")))
    add_scalar(nm, "df", s$df)
    add_scalar(nm, "spar", s$spar)
    add_scalar(nm, "lambda", s$lambda)
    add_scalar(nm, "crit", s$crit)
    add_scalar(nm, "iterations", s$iparms[["iter"]])
  })
}

write_tsv(scalars, file.path(out_dir, "scalars.tsv"))
write_tsv(warn_log, file.path(out_dir, "warnings.tsv"))
write_tsv(data.frame(name = c("R", "qvalue", "limma"),
                     value = c(R.version.string, as.character(packageVersion("qvalue")),
                               as.character(packageVersion("limma"))),
                     stringsAsFactors = FALSE),
          file.path(out_dir, "versions.tsv"))
cat("done\n")
