# quotaflow roles image: `docker run quotaflow <role>` with role = ingest | processor | api | all | migrate.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
USER node
ENTRYPOINT ["node", "bin/quotaflow.js"]
