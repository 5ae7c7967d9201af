# Reference outputs for manylm's QTL scans: R lm() fitted pair by pair.
#
# Run from the repository root:
#     Rscript tests/reference/qtl.R
#
# Simulates small genotypes (dosages with missing calls), phenotypes and covariates
# (set.seed), writes them to tests/reference/qtl/, then for every (variant, phenotype) pair
# fits the models manylm's scan reproduces and writes their statistics with 17 significant
# digits. Deterministic: running it twice gives byte-identical files.

ref_dir <- file.path("tests", "reference")
out_dir <- file.path(ref_dir, "qtl")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
source(file.path(ref_dir, "reference_writers.R"))

cat(R.version.string, "\n")
write_tsv(data.frame(name = c("R", "stats"),
                     version = c(R.version.string, as.character(packageVersion("stats")))),
          file.path(out_dir, "versions.tsv"))

set.seed(20261121)
n <- 60
n_variants <- 40
n_phenotypes <- 15
samples <- sprintf("S%02d", seq_len(n))
variants <- sprintf("rs%03d", seq_len(n_variants))
phenotype_ids <- sprintf("gene%02d", seq_len(n_phenotypes))

# Covariates: age, sex and a 3-level batch (20 samples each), as numeric columns.
age <- round(runif(n, 20, 80))
sex <- rbinom(n, 1, 0.5)
batch <- rep(c("b1", "b2", "b3"), each = n / 3)
covariates <- cbind(age = age, sex = sex, batch2 = as.numeric(batch == "b2"),
                    batch3 = as.numeric(batch == "b3"))
rownames(covariates) <- samples

# Genotypes: hard calls 0/1/2 for most variants, continuous dosages for rs001-rs008.
maf <- runif(n_variants, 0.05, 0.5)
geno <- t(sapply(maf, function(f) rbinom(n, 2, f)))
geno <- matrix(as.numeric(geno), n_variants, n)
continuous <- 1:8
geno[continuous, ] <- pmin(2, pmax(0, geno[continuous, ] +
                                     matrix(runif(8 * n, -0.4, 0.4), 8, n)))
# 3% missing calls, uniformly
geno[sample(length(geno), round(0.03 * length(geno)))] <- NA
# rs009: missing for all of batch b3 (the complete cases cannot estimate batch3)
geno[9, batch == "b3"] <- NA
# rs010: missing in 40 samples (more than 32: mean-imputed by default)
geno[10, sample(n, 40)] <- NA
# rs011: monomorphic among the observed samples
geno[11, !is.na(geno[11, ])] <- 1
# rs012: a single carrier (ANOVA sees two classes)
geno[12, ] <- 0
geno[12, 5] <- 1
dimnames(geno) <- list(variants, samples)

# Phenotypes: noise, covariate effects, and genotype effects for the first 6 pairs
expr <- matrix(rnorm(n_phenotypes * n), n_phenotypes, n,
               dimnames = list(phenotype_ids, samples))
expr <- expr + outer(rnorm(n_phenotypes, 0, 0.02), age) + outer(rnorm(n_phenotypes), sex)
for (i in 1:6) {
  g <- geno[i, ]
  g[is.na(g)] <- mean(g, na.rm = TRUE)
  expr[i, ] <- expr[i, ] + 1.2 * g
}
expr[7, ] <- expr[7, ] + 1.5 * ifelse(is.na(geno[7, ]), 0, geno[7, ]) * (age - 50) / 10

# Positions for the cis scan: two chromosomes, variants every 10 kb, genes every 30 kb
variant_pos <- data.frame(variant = variants, chrom = rep(c("1", "2"), each = n_variants / 2),
                          pos = rep(seq(100000, by = 10000, length.out = n_variants / 2), 2))
gene_pos <- data.frame(phenotype = phenotype_ids,
                       chrom = paste0("chr", c(rep("1", 8), rep("2", 7))),
                       start = c(seq(95000, by = 30000, length.out = 8),
                                 seq(95000, by = 30000, length.out = 7)))
window <- 25000

write_tsv(cbind(data.frame(variant = variants), as.data.frame(geno, check.names = FALSE)),
          file.path(out_dir, "genotypes.tsv"))
write_tsv(cbind(data.frame(phenotype = phenotype_ids), as.data.frame(expr, check.names = FALSE)),
          file.path(out_dir, "phenotypes.tsv"))
write_tsv(cbind(data.frame(covariate = colnames(covariates)),
                as.data.frame(t(covariates), check.names = FALSE)),
          file.path(out_dir, "covariates.tsv"))
write_tsv(data.frame(sample = samples, age = age, sex = sex, batch = batch,
                     status = as.integer(expr[1, ] > median(expr[1, ]))),
          file.path(out_dir, "samples.tsv"))
write_tsv(variant_pos, file.path(out_dir, "variant_positions.tsv"))
write_tsv(gene_pos, file.path(out_dir, "phenotype_positions.tsv"))

# ---------------------------------------------------------------------------------- pair fits

# The t test of the last coefficient of y ~ covariates + columns (NA rows dropped by lm).
last_coefficient <- function(y, extra) {
  fit <- lm(y ~ covariates + extra)
  s <- summary(fit)$coefficients
  name <- tail(names(coef(fit)), 1)
  if (!(name %in% rownames(s))) return(c(NA, NA, NA, NA, fit$df.residual))
  c(s[name, ], fit$df.residual)
}

rows <- list()
for (v in seq_len(n_variants)) for (p in seq_len(n_phenotypes)) {
  g <- geno[v, ]
  y <- expr[p, ]
  g_mean <- g
  g_mean[is.na(g_mean)] <- mean(g, na.rm = TRUE)
  complete <- last_coefficient(y, g)
  imputed <- last_coefficient(y, g_mean)
  inter <- last_coefficient(y, cbind(g, g * age))
  # ANOVA: genotype classes as a factor, F test against the covariates-only model
  ok <- !is.na(g)
  classes <- factor(round(g[ok]))
  y_ok <- y[ok]
  cov_ok <- covariates[ok, , drop = FALSE]
  null_fit <- lm(y_ok ~ cov_ok)
  if (nlevels(classes) > 1) {
    full_fit <- lm(y_ok ~ cov_ok + classes)
    a <- anova(null_fit, full_fit)
    anova_f <- a$F[2]; anova_df1 <- a$Df[2]; anova_p <- a[["Pr(>F)"]][2]
    anova_df2 <- a$Res.Df[2]
  } else {
    anova_f <- NA; anova_df1 <- NA; anova_p <- NA; anova_df2 <- NA
  }
  rows[[length(rows) + 1]] <- data.frame(
    variant = variants[v], phenotype = phenotype_ids[p], n_obs = sum(ok),
    beta = complete[1], se = complete[2], t = complete[3], p = complete[4],
    df = complete[5],
    beta_mean = imputed[1], se_mean = imputed[2], t_mean = imputed[3], p_mean = imputed[4],
    beta_gxage = inter[1], se_gxage = inter[2], t_gxage = inter[3], p_gxage = inter[4],
    df_gxage = inter[5],
    F_anova = anova_f, df1_anova = anova_df1, df2_anova = anova_df2, p_anova = anova_p,
    stringsAsFactors = FALSE)
}
pairs <- do.call(rbind, rows)

# cis: same chromosome (without "chr") and |pos - start| <= window
vp <- variant_pos[match(pairs$variant, variant_pos$variant), ]
gp <- gene_pos[match(pairs$phenotype, gene_pos$phenotype), ]
pairs$cis <- as.integer(vp$chrom == sub("^chr", "", gp$chrom) & abs(vp$pos - gp$start) <= window)

# BH over the tests performed: manylm skips rs011 (monomorphic) and, in the default scan,
# mean-imputes rs010; families are all pairs, or cis and trans separately.
tested <- pairs$variant != "rs011"
p_default <- ifelse(pairs$variant == "rs010", pairs$p_mean, pairs$p)
pairs$p_default <- p_default
pairs$adj_default <- NA_real_
pairs$adj_default[tested] <- p.adjust(p_default[tested], "BH")
pairs$adj_cis_family <- NA_real_
for (family in 0:1) {
  members <- tested & pairs$cis == family
  pairs$adj_cis_family[members] <- p.adjust(p_default[members], "BH")
}
pairs$adj_mean <- NA_real_
pairs$adj_mean[tested] <- p.adjust(pairs$p_mean[tested], "BH")

write_tsv(pairs, file.path(out_dir, "lm_pairs.tsv.gz"))

# GWAS-style: status (0/1) ~ sex + batch + genotype, complete cases
status <- as.integer(expr[1, ] > median(expr[1, ]))
batch_factor <- factor(batch)
gwas <- do.call(rbind, lapply(seq_len(n_variants), function(v) {
  g <- geno[v, ]
  fit <- lm(status ~ sex + batch_factor + g)
  s <- summary(fit)$coefficients
  if (!("g" %in% rownames(s))) return(data.frame(variant = variants[v], beta = NA, se = NA,
                                                   t = NA, p = NA))
  data.frame(variant = variants[v], beta = s["g", 1], se = s["g", 2], t = s["g", 3],
             p = s["g", 4])
}))
write_tsv(gwas, file.path(out_dir, "lm_outcome.tsv"))
cat("wrote", nrow(pairs), "pairs and", nrow(gwas), "outcome tests to", out_dir, "\n")
