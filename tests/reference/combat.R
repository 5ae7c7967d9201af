# Reference outputs from R sva (ComBat, ComBat_seq) and limma (removeBatchEffect) for manylm.
#
# Run from the repository root:
#     Rscript tests/reference/combat.R
#
# Reads tests/reference/inputs/{bladder_expr.tsv.gz, bladder_samples.tsv, bladder_weights.tsv.gz,
# pasilla_counts.tsv.gz, pasilla_samples.tsv, synth_counts.tsv.gz, synth_counts_samples.tsv};
# writes its own derived inputs and every output under tests/reference/combat/.
# Numbers are written with 17 significant digits (see reference_writers.R).

suppressPackageStartupMessages({
  library(sva)
  library(limma)
  library(edgeR)
})

ref_dir <- file.path("tests", "reference")
in_dir <- file.path(ref_dir, "inputs")
out_dir <- file.path(ref_dir, "combat")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
source(file.path(ref_dir, "reference_writers.R"))

cat(R.version.string, "\n")
for (p in c("sva", "limma", "edgeR", "genefilter", "BiocParallel")) {
  cat(p, as.character(packageVersion(p)), "\n")
}

warn_log <- data.frame(case = character(0), warning = character(0), stringsAsFactors = FALSE)

read_matrix <- function(path) {
  df <- read.delim(path, check.names = FALSE, stringsAsFactors = FALSE, row.names = 1)
  as.matrix(df)
}
read_sheet <- function(path) {
  read.delim(path, check.names = FALSE, stringsAsFactors = FALSE)
}
out <- function(name) file.path(out_dir, name)

# Runs `expr` for `case`, logging its messages, warnings and printed lines (ComBat cat()s).
logged <- function(case, expr) {
  printed <- capture.output(value <- run_case(case, expr))
  for (line in printed[nzchar(trimws(printed))]) {
    cat("[", case, "] printed: ", line, "\n", sep = "")
    warn_log[nrow(warn_log) + 1, ] <<- c(case, paste("printed:", trimws(line)))
  }
  value
}

# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

y <- read_matrix(file.path(in_dir, "bladder_expr.tsv.gz"))
samples <- read_sheet(file.path(in_dir, "bladder_samples.tsv"))
stopifnot(identical(colnames(y), samples$sample))
batch <- samples$batch
cancer <- factor(samples$cancer)
mod <- model.matrix(~cancer)
weights <- read_matrix(file.path(in_dir, "bladder_weights.tsv.gz"))
stopifnot(identical(dimnames(weights), dimnames(y)))

# Most cases use the first 600 features (R's non-parametric ComBat is slow, and the files stay
# small); `parametric` uses all 2,026.
ysub <- y[1:600, ]

# Missing values: 2% of the cells, then every feature keeps >= 2 observed values per batch.
set.seed(20261122)
ymiss <- ysub
cells <- sample(length(ymiss), round(0.02 * length(ymiss)))
ymiss[cells] <- NA
for (b in unique(batch)) {
  cols <- which(batch == b)
  for (g in which(rowSums(!is.na(ymiss[, cols, drop = FALSE])) < 2)) {
    ymiss[g, cols] <- ysub[g, cols]
  }
}
write_tsv(mat_df(ymiss, "feature"), out("bladder_missing_expr.tsv.gz"))

# Features ComBat leaves alone: the first 300 features, with
#   row 1 constant (7) within batch 3, row 2 constant (5) everywhere,
#   row 3 zero within batch 1, row 4 constant (9) within batch 4 and batch 5.
yedge <- y[1:300, ]
yedge[1, batch == 3] <- 7
yedge[2, ] <- 5
yedge[3, batch == 1] <- 0
yedge[4, batch == 4] <- 9
yedge[4, batch == 5] <- 9
write_tsv(mat_df(yedge, "feature"), out("bladder_edge_expr.tsv.gz"))

# Extra sample variables for removeBatchEffect: a second batch factor and two covariates.
set.seed(20261123)
extra <- data.frame(sample = samples$sample,
                    batch2 = rep(c("p", "q", "r"), length.out = nrow(samples)),
                    age = round(runif(nrow(samples), 30, 80)),
                    rin = round(rnorm(nrow(samples), 7, 1), 2),
                    stringsAsFactors = FALSE)
write_tsv(extra, out("bladder_extra_samples.tsv"))

# ---------------------------------------------------------------------------------------------
# ComBat
# ---------------------------------------------------------------------------------------------

# Per-batch priors and posteriors, read from ComBat's frame when it returns.
combat_internals <- NULL
trace("ComBat", print = FALSE, exit = quote(assign("combat_internals", envir = globalenv(),
  list(gamma.bar = gamma.bar, t2 = t2, a.prior = a.prior, b.prior = b.prior,
       gamma.star = gamma.star, delta.star = delta.star, var.pooled = var.pooled))))

write_combat <- function(case, result, internals = TRUE) {
  write_tsv(mat_df(result, "feature"), out(paste0(case, ".tsv.gz")))
  if (internals) {
    i <- combat_internals
    write_tsv(data.frame(batch = levels(factor(batch)), gamma_bar = i$gamma.bar, t2 = i$t2,
                         a_prior = i$a.prior, b_prior = i$b.prior),
              out(paste0(case, ".priors.tsv")))
  }
}

combat_cases <- list(
  parametric = list(dat = y, mod = mod),
  parametric_nomod = list(dat = ysub, mod = NULL),
  nonparametric = list(dat = ysub, mod = mod, par.prior = FALSE),
  mean_only = list(dat = ysub, mod = mod, mean.only = TRUE),
  mean_only_nonparametric = list(dat = ysub, mod = mod, mean.only = TRUE, par.prior = FALSE),
  reference = list(dat = ysub, mod = mod, ref.batch = 2),
  reference_nonparametric = list(dat = ysub, mod = NULL, ref.batch = 5, par.prior = FALSE),
  missing = list(dat = ymiss, mod = mod),
  missing_reference = list(dat = ymiss, mod = mod, ref.batch = 2),
  missing_nonparametric = list(dat = ymiss, mod = NULL, par.prior = FALSE),
  edge = list(dat = yedge, mod = mod)
)
for (case in names(combat_cases)) {
  args <- combat_cases[[case]]
  combat_internals <- NULL
  result <- logged(case, do.call(ComBat, c(list(batch = batch), args)))
  write_combat(case, result, internals = case != "edge")
}
untrace("ComBat")

# gamma.star / delta.star of the parametric case, as a check of the EB iteration itself.
combat_internals <- NULL
trace("ComBat", print = FALSE, exit = quote(assign("combat_internals", envir = globalenv(),
  list(gamma.star = gamma.star, delta.star = delta.star, var.pooled = var.pooled))))
invisible(logged("parametric_posteriors", ComBat(y, batch, mod = mod)))
untrace("ComBat")
post <- data.frame(feature = rownames(y), var_pooled = as.vector(combat_internals$var.pooled))
for (k in seq_len(nrow(combat_internals$gamma.star))) {
  b <- levels(factor(batch))[k]
  post[[paste0("gamma_star:", b)]] <- combat_internals$gamma.star[k, ]
  post[[paste0("delta_star:", b)]] <- combat_internals$delta.star[k, ]
}
write_tsv(post, out("parametric.posteriors.tsv.gz"))

# ---------------------------------------------------------------------------------------------
# removeBatchEffect
# ---------------------------------------------------------------------------------------------

rbe_cases <- list(
  rbe_batch = list(x = ysub, batch = batch),
  rbe_design = list(x = ysub, batch = batch, design = mod),
  rbe_batch2_covariates = list(x = ysub, batch = batch, batch2 = extra$batch2,
                               covariates = cbind(age = extra$age, rin = extra$rin),
                               design = mod),
  rbe_covariates_only = list(x = ysub, covariates = cbind(age = extra$age), design = mod),
  rbe_missing = list(x = ymiss, batch = batch, design = mod),
  rbe_weights = list(x = ysub, batch = batch, design = mod, weights = weights[1:600, ])
)
for (case in names(rbe_cases)) {
  result <- logged(case, do.call(removeBatchEffect, rbe_cases[[case]]))
  write_tsv(mat_df(result, "feature"), out(paste0(case, ".tsv.gz")))
}

# ---------------------------------------------------------------------------------------------
# ComBat_seq
# ---------------------------------------------------------------------------------------------

pasilla <- read_matrix(file.path(in_dir, "pasilla_counts.tsv.gz"))
pasilla_samples <- read_sheet(file.path(in_dir, "pasilla_samples.tsv"))
stopifnot(identical(colnames(pasilla), pasilla_samples$sample))
synth <- read_matrix(file.path(in_dir, "synth_counts.tsv.gz"))
synth_samples <- read_sheet(file.path(in_dir, "synth_counts_samples.tsv"))
stopifnot(identical(colnames(synth), synth_samples$sample))

seq_internals <- NULL
trace("ComBat_seq", print = FALSE, exit = quote(assign("seq_internals", envir = globalenv(),
  list(keep = keep, disp_common = disp_common, phi_hat = phi_hat, gamma_hat = gamma_hat,
       mu_hat = mu_hat, alpha_g = alpha_g))))

seq_cases <- list(
  seq_pasilla_group = list(counts = pasilla, batch = pasilla_samples$type,
                           group = pasilla_samples$condition),
  seq_pasilla_null = list(counts = pasilla, batch = pasilla_samples$type),
  seq_synth_group = list(counts = synth, batch = synth_samples$batch,
                         group = synth_samples$group)
)
for (case in names(seq_cases)) {
  args <- seq_cases[[case]]
  seq_internals <- NULL
  result <- logged(case, do.call(ComBat_seq, args))
  storage.mode(result) <- "integer"
  write_tsv(mat_df(result, "feature"), out(paste0(case, ".tsv.gz")))
  i <- seq_internals
  levels_b <- levels(factor(args$batch))
  write_tsv(data.frame(batch = levels_b, common_dispersion = i$disp_common),
            out(paste0(case, ".common_dispersion.tsv")))
  kept <- rownames(args$counts)[i$keep]
  est <- data.frame(feature = kept, alpha = as.vector(i$alpha_g))
  for (k in seq_along(levels_b)) {
    est[[paste0("dispersion:", levels_b[k])]] <- i$phi_hat[, k]
    est[[paste0("gamma_hat:", levels_b[k])]] <- i$gamma_hat[, k]
  }
  write_tsv(est, out(paste0(case, ".estimates.tsv.gz")))
  mu <- i$mu_hat[1:1000, ]  # the first 1,000 kept genes: a check of the NB GLM fit
  rownames(mu) <- kept[1:1000]
  colnames(mu) <- colnames(args$counts)
  write_tsv(mat_df(mu, "feature"), out(paste0(case, ".mu_hat.tsv.gz")))
}
untrace("ComBat_seq")

# Building blocks: Brent's optimize and edgeR's spline maximiser on fixed inputs.
brent <- data.frame(case = character(0), maximum = numeric(0), objective = numeric(0))
f1 <- function(x) -(x - 0.3)^2 + 0.1 * sin(7 * x)
o <- optimize(f1, c(0, 2^0.5), maximum = TRUE, tol = 1e-5)
brent[1, ] <- list("sine_bump", o$maximum, o$objective)
f2 <- function(x) log(x + 1e-3) - x^2
o <- optimize(f2, c(0, 2^0.5), maximum = TRUE, tol = 1e-5)
brent[2, ] <- list("log_minus_square", o$maximum, o$objective)
write_tsv(brent, out("brent.tsv"))

set.seed(20261124)
grid <- seq(-6, 6, length.out = 11)
curves <- t(sapply(1:40, function(i) {
  centre <- runif(1, -7, 7)
  -(grid - centre)^2 * runif(1, 0.1, 2) + rnorm(11, 0, 0.3)
}))
interp <- data.frame(curve = sprintf("c%02d", 1:40), maximum = maximizeInterpolant(grid, curves))
for (j in seq_along(grid)) interp[[sprintf("apl%02d", j)]] <- curves[, j]
write_tsv(interp, out("maximize_interpolant.tsv"))

# ---------------------------------------------------------------------------------------------
# Logs and versions
# ---------------------------------------------------------------------------------------------

write_tsv(warn_log, out("messages.tsv"))
versions <- data.frame(name = c("R", "sva", "limma", "edgeR", "genefilter", "BiocParallel"),
                       value = c(R.version.string,
                                 sapply(c("sva", "limma", "edgeR", "genefilter",
                                          "BiocParallel"),
                                        function(p) as.character(packageVersion(p)))),
                       stringsAsFactors = FALSE)
write_tsv(versions, out("versions.tsv"))
cat("done\n")
